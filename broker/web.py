"""The HTTP side of the service: the page at ``/``, the WAMP WebSocket at ``/ws``, JSON-RPC at ``/jsonrpc``."""

from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import Resource
from twisted.web.server import Site

from broker.jsonrpc import JsonRpcResource

PLACEHOLDER = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>webkernel</title></head>
<body><h1>webkernel</h1>
<p>The WAMP router is running. Connect a WAMP client to <code>/ws</code>
on this host and port (realm and token as the service logged them).
The notebook page comes here.</p></body></html>
"""


class PlaceholderPage(Resource):
    """A page saying the service runs (the notebook page will replace it)."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return PLACEHOLDER


def make_site(websocket_factory, router=None, reactor=None):
    """The Twisted Web site: ``/``, ``/ws``, and ``/jsonrpc`` when given the *router* to call through."""
    root = Resource()
    page = PlaceholderPage()
    root.putChild(b"", page)
    root.putChild(b"ws", WebSocketResource(websocket_factory))
    if router is not None:
        root.putChild(b"jsonrpc", JsonRpcResource(router, reactor))
    site = Site(root)
    site.displayTracebacks = False
    return site
