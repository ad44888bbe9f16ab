"""The HTTP side of the service: the notebook page at ``/`` (assets at ``/static/``), the WAMP WebSocket at ``/ws``, JSON-RPC at ``/jsonrpc``."""

from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import Resource
from twisted.web.server import Site

from broker.jsonrpc import JsonRpcResource
from broker.notebook.page import NotebookPage, static_resource


def make_site(websocket_factory, router=None, reactor=None, realm="webkernel", anonymous=False):
    """The Twisted Web site: ``/``, ``/static/``, ``/ws``, and ``/jsonrpc`` when given the *router* to call through.

    Its timers (HTTP idle timeouts) run on *reactor*. The page is told the *realm* and whether it may join *anonymous*ly.
    """
    root = Resource()
    root.putChild(b"", NotebookPage(realm, anonymous))
    root.putChild(b"static", static_resource())
    root.putChild(b"ws", WebSocketResource(websocket_factory))
    if router is not None:
        root.putChild(b"jsonrpc", JsonRpcResource(router, reactor))
    site = Site(root, reactor=reactor)   # its timeouts run on *reactor*, not the global one
    site.displayTracebacks = False
    return site
