"""The WAMP session behind a client, and opening it over a WebSocket.

:class:`ClientSession` is an ordinary Autobahn ``ApplicationSession`` that
joins with the service token (WAMP-Ticket), as a user with a password
(WAMP-CRA, multi-user mode: the password never crosses the wire) or
anonymously, and says when it has joined and when it is gone. The same class runs over a WebSocket
(:func:`open_websocket_session`) or attached in-process to the embedded
router (the JSON-RPC endpoint does that).

Over a WebSocket the client pings the router (Autobahn's auto-ping): every
*ping_interval* seconds, and if no pong comes within *ping_timeout* seconds
the connection is dropped. Behind a network partition (no FIN) the
connection would otherwise stay open for ever, half of it dead: calls would
hang until their timeout and a reconnecting client would never reconnect.
"""

from urllib.parse import parse_qs, urlsplit, urlunsplit

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.auth import compute_wcs, derive_key
from twisted.internet import defer, endpoints, error, ssl
from twisted.logger import Logger

from broker import errors
from broker.cleartext import sends_in_clear
from broker.client.errors import ConnectionFailed, NotAuthorized
from broker.timers import ReactorTimers

#: seconds between the client's WebSocket pings, and how long it waits for the pong
DEFAULT_PING_INTERVAL = 10.0
DEFAULT_PING_TIMEOUT = 5.0
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
#: why a password is not sent as a ticket over plain ws:// to another machine
PASSWORD_IN_CLEAR = ("the router asks for the password as a ticket, and this connection is plain "
                     "ws:// to another machine: the password would cross the network unencrypted; "
                     "connect with wss://")


class ClientSession(ApplicationSession):
    """Joins with the token as WAMP ticket, as *authid* with *password*, or
    anonymously without either.

    A password signs in by WAMP-CRA (webkernel's own router, ``--users``: the
    password is never sent) or, where the router signs users in by ticket (a
    classroom Crossbar.io, ``docs/scaling.md``), as the ticket, but only if
    *ticket_in_clear* is false: over ``wss://`` or to this machine. Otherwise
    the join fails with :class:`NotAuthorized` saying so, before the password
    leaves.

    ``joined`` fires with the session once welcomed, or fails with
    :class:`NotAuthorized` or :class:`ConnectionFailed`; each
    :meth:`when_closed` Deferred fires once the connection is gone.
    """

    log = Logger()

    def __init__(self, config, token=None, authid=None, password=None, ticket_in_clear=False):
        super().__init__(config)
        self._ticket_in_clear = ticket_in_clear
        self._token = token
        self._password = password
        self._requested_authid = authid
        self.joined = defer.Deferred()
        self.is_gone = False
        self._close_waiters = []

    def onConnect(self):
        if self._password is not None:
            methods = ["wampcra", "ticket"]
        else:
            methods = ["anonymous"] if self._token is None else ["ticket"]
        self.join(self.config.realm, authmethods=methods, authid=self._requested_authid)

    def onChallenge(self, challenge):
        if challenge.method == "wampcra" and self._password is not None:
            return wampcra_signature(self._password, challenge.extra)
        if challenge.method == "ticket" and self._password is not None:
            if self._ticket_in_clear:
                raise NotAuthorized(PASSWORD_IN_CLEAR, errors.NOT_AUTHORIZED)
            return self._password
        if challenge.method != "ticket" or self._token is None:
            raise NotAuthorized(f"the service asks for {challenge.method!r}; give the token "
                                f"(or, on a multi-user service, user= and password=)")
        return self._token

    def onUserError(self, fail, msg):
        """A sign-in this side refused (:class:`NotAuthorized` from onChallenge) is the join's error, not a crash."""
        if fail.check(NotAuthorized) is None:
            super().onUserError(fail, msg)

    def onJoin(self, details):
        if not self.joined.called:
            self.joined.callback(self)

    def onLeave(self, details):
        if not self.joined.called:
            refused = details.reason in (errors.NOT_AUTHORIZED, errors.CANNOT_AUTHENTICATE)
            cls = NotAuthorized if refused else ConnectionFailed
            self.joined.errback(cls(details.message or details.reason, details.reason))
        if details.reason == errors.GOODBYE_AND_OUT:  # our own leave(): nothing to warn about
            details = types.CloseDetails(types.CloseDetails.REASON_DEFAULT, details.message)
        return super().onLeave(details)

    def onDisconnect(self):
        super().onDisconnect()
        self.gone("the connection closed before the session joined")

    def when_closed(self):
        """A Deferred that fires once the connection is gone."""
        if self.is_gone:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._close_waiters.append(waiter)
        return waiter

    def gone(self, why):
        """The connection is gone (or never opened): fail ``joined`` if pending, wake the closed waiters."""
        if not self.joined.called:
            self.joined.errback(ConnectionFailed(why))
        self.is_gone = True
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            waiter.callback(None)


def service_address(url, token=None):
    """``(websocket_url, token)`` for a service URL.

    Takes the URL the service logs (``http://127.0.0.1:8080/?token=…``: the
    WebSocket is then ``ws://127.0.0.1:8080/ws`` and the token comes from the
    query) or a WebSocket URL (``ws://…/ws``, ``wss://…/ws``). An explicit
    *token* wins over one in the URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ValueError(f"not a webkernel URL: {url!r} (use http://host:port/ or ws://host:port/ws)")
    if token is None:
        token = parse_qs(parts.query).get("token", [None])[0]
    path = parts.path
    if parts.scheme.startswith("http") and path in ("", "/") or not path:
        path = "/ws"
    return urlunsplit((_SCHEMES[parts.scheme], parts.netloc, path, "", "")), token


def wampcra_signature(password, extra):
    """WAMP-CRA's answer to a CHALLENGE's *extra*, salted (``salt``, ``iterations``, ``keylen``) or not."""
    key = password
    if "salt" in extra:
        key = derive_key(password, extra["salt"], extra.get("iterations", 1000),
                         extra.get("keylen", 32))
    return compute_wcs(key, extra["challenge"]).decode("ascii")


def _endpoint(reactor, ws_url, timeout):
    parts = urlsplit(ws_url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    endpoint = endpoints.HostnameEndpoint(reactor, parts.hostname, port, timeout=timeout)
    if secure:
        endpoint = endpoints.wrapClientTLS(ssl.optionsForClientTLS(parts.hostname), endpoint)
    return endpoint


def check_ping(ping_interval, ping_timeout):
    """Refuse a ping setting that is not a positive number of seconds (None: no pings)."""
    for name, value in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")


def websocket_factory(session, ws_url, reactor, ping_interval=DEFAULT_PING_INTERVAL,
                      ping_timeout=DEFAULT_PING_TIMEOUT):
    """The WebSocket factory for *session*: its timers on *reactor*, auto-ping as asked.

    *ping_interval* None sends no pings; *ping_timeout* None never drops the
    connection for a missing pong.
    """
    check_ping(ping_interval, ping_timeout)
    factory = WampWebSocketClientFactory(lambda: session, url=ws_url, reactor=reactor)
    factory._batched_timer = ReactorTimers(reactor)
    factory.setProtocolOptions(autoPingInterval=ping_interval or 0,
                               autoPingTimeout=ping_timeout or 0)
    return factory


@defer.inlineCallbacks
def open_websocket_session(reactor, url, token, realm, authid, timeout, password=None,
                           ping_interval=DEFAULT_PING_INTERVAL, ping_timeout=DEFAULT_PING_TIMEOUT):
    """A joined :class:`ClientSession` over a WebSocket to *url* (bounded by *timeout*)."""
    ws_url, token = service_address(url, token)
    session = ClientSession(types.ComponentConfig(realm=realm), token=token, authid=authid,
                            password=password, ticket_in_clear=sends_in_clear(ws_url))
    factory = websocket_factory(session, ws_url, reactor, ping_interval, ping_timeout)
    try:
        protocol = yield _endpoint(reactor, ws_url, timeout).connect(factory)
    except error.ConnectError as e:
        raise ConnectionFailed(f"cannot connect to {ws_url}: {e}")
    protocol.is_closed.addCallback(
        lambda _: session.gone(f"{ws_url} closed the connection before the session joined"))
    try:
        yield session.joined.addTimeout(timeout, reactor)
    except defer.TimeoutError:
        protocol.transport.abortConnection()
        raise ConnectionFailed(f"no WAMP session joined at {ws_url} within {timeout} s")
    except defer.CancelledError:
        protocol.transport.abortConnection()
        raise
    return session
