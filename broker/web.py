"""The HTTP side of the service: the notebook page at ``/`` (assets at ``/static/``), the WAMP WebSocket at ``/ws``, JSON-RPC at ``/jsonrpc``, the Jupyter gateway API at ``/api`` and ``/kernelspecs``; or a front's page alone (``--front``)."""

from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import Resource

from broker.http_guard import GuardedSite, HttpLimits
from broker.notebook.page import USERS_TICKET, NotebookPage, static_resource


def make_site(websocket_factory, jsonrpc=None, reactor=None, realm="webkernel", anonymous=False,
              limits=None, body_allowed=None, children=None, users=False):
    """The Twisted Web site: ``/``, ``/static/``, ``/ws``, and the *jsonrpc* resource at ``/jsonrpc`` if given.

    Its timers (HTTP idle timeouts, header deadlines) run on *reactor*. The page is told
    the *realm* and whether it may join *anonymous*ly, or signs in as a user (*users*). Every request keeps to the HTTP
    *limits* (:class:`~broker.http_guard.HttpLimits`), and sends a body only if
    *body_allowed* its token (see :mod:`broker.http_guard`). *children* (``{name: resource}``)
    are more top-level resources (the gateway's ``api`` and ``kernelspecs``).
    """
    if reactor is None:   # Twisted would quietly take the global reactor
        raise TypeError("make_site needs the reactor its timers run on")
    limits = limits or HttpLimits()
    root = Resource()
    root.putChild(b"", NotebookPage(realm, anonymous, users=users))
    root.putChild(b"static", static_resource())
    root.putChild(b"ws", WebSocketResource(websocket_factory))
    if jsonrpc is not None:
        root.putChild(b"jsonrpc", jsonrpc)
    for name, resource in (children or {}).items():
        root.putChild(name, resource)
    site = GuardedSite(root, limits, body_allowed, reactor=reactor)   # timers on *reactor*
    site.displayTracebacks = False
    return site


def make_front_site(router_url, reactor, realm="webkernel", limits=None, auth="anonymous",
                    plain_ws=False):
    """A front's site (``--front``): the page at ``/`` and ``/static/`` only.

    The page joins *realm* at *router_url* (a Crossbar.io WebSocket) itself:
    anonymously, or with *auth* ``"ticket"`` (a classroom Crossbar.io) after
    its sign-in form, the user's password as the ticket (over plain ``ws://``
    to a host that is not loopback only if *plain_ws*). The front runs no
    router and takes no request bodies.
    """
    if reactor is None:
        raise TypeError("make_front_site needs the reactor its timers run on")
    root = Resource()
    users = USERS_TICKET if auth == "ticket" else False
    root.putChild(b"", NotebookPage(realm, anonymous=not users, users=users,
                                    router_url=router_url, plain_ws=plain_ws))
    root.putChild(b"static", static_resource())
    site = GuardedSite(root, limits or HttpLimits(), lambda credentials, peer: False,
                       reactor=reactor)
    site.displayTracebacks = False
    return site
