"""Joining an external router (Crossbar.io) as one of the service's own sessions, for good.

A kernel host (``--router``) and a notebook service (``--router
--notebooks-only``) each keep one session joined to a router they do not run:
authenticated by a WAMP ticket, retried for ever with a capped back-off, and
pinged so that a connection cut without a FIN (a network partition) is
noticed and made again. This module is that connection, in one place; what
the session does once joined is its caller's (``session_factory``).
"""

#: seconds between the session's WebSocket pings to its router (``--router-ping``)
DEFAULT_ROUTER_PING = 10.0
#: seconds it waits for the pong before it drops the connection (``--router-ping-timeout``)
DEFAULT_ROUTER_PING_TIMEOUT = 5.0
#: longest wait, in seconds, between two attempts to reach the router again (Autobahn's is 300 s:
#: a host back from an hour's partition would wait up to five minutes more)
RECONNECT_MAX_DELAY = 10.0


def router_transport(url, ping_interval=DEFAULT_ROUTER_PING,
                     ping_timeout=DEFAULT_ROUTER_PING_TIMEOUT):
    """The Autobahn ``Component`` transport of a session joining *url*.

    It retries for ever (Autobahn's back-off, at most :data:`RECONNECT_MAX_DELAY`
    between attempts), and pings the router every *ping_interval* seconds: a
    connection whose pong does not come within *ping_timeout* seconds is
    dropped and made again. Without it a host behind a network partition keeps
    a half-open connection the router has long closed, and its kernels stay
    unreachable (reported dead) after the network heals (docs/scaling.md).
    """
    return {"url": url, "max_retries": -1, "max_retry_delay": RECONNECT_MAX_DELAY,
            "options": {"autoPingInterval": ping_interval, "autoPingTimeout": ping_timeout}}


def joining_component(transport, realm, authid, ticket, session_factory):
    """An Autobahn ``Component`` (not started) that keeps a session of *session_factory* joined.

    *transport* is :func:`router_transport`'s; each (re)connection makes a new
    session with ``session_factory(config)``, joining *realm* as *authid* with
    the WAMP ticket *ticket*.
    """
    from autobahn.twisted.component import Component
    return Component(transports=[transport], realm=realm,
                     authentication={"ticket": {"authid": authid, "ticket": ticket}},
                     session_factory=session_factory)
