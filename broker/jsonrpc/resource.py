"""``POST /jsonrpc``: JSON-RPC 2.0 over HTTP, reaching kernels through the router.

Who is calling is decided per request, by the router's own authenticators
(the *authenticate* function the wiring hands over): a token, as
``?token=…`` or ``Authorization: token …``, is a WAMP ticket for the authid
``jsonrpc`` (the service token makes role ``user``); a request without a
token joins ``anonymous``ly as ``jsonrpc-anonymous`` where ``--anonymous``
allows it. HTTP Basic (``http://alice:PASSWORD@host/jsonrpc``) is a WAMP
ticket for that user name: in multi-user mode (``--users``) the user's
password, so each user is themself, with their role, and has their own
workspace and default kernel. Wrong or missing credentials are HTTP 401
with a JSON-RPC error body.
Each principal gets one WAMP session attached in-process to the router
(through the *attach* function the wiring hands over) and a
:class:`~broker.jsonrpc.methods.Workspace`, made on first use.

Requests must say ``Content-Type: application/json`` (or ``json-rpc``,
``jsonrequest``), as JSON-RPC over HTTP asks; this also keeps other web
pages from posting to the endpoint from a browser. Bodies over
``max_body`` bytes are refused with HTTP 413 (the site refuses larger ones,
and bodies without the token, before reading them: :mod:`broker.http_guard`). A client that disconnects cancels its
pending calls, which interrupts code it was running.
"""

from autobahn.wamp import types
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from broker.client.asynchronous import AsyncClient
from broker.client.session import ClientSession
from broker.http_guard import (
    DEFAULT_MAX_BODY,
    NOT_SIGNED_IN,
    basic_credentials,
    peer_name,
    sign_in,
)
from broker.jsonrpc import protocol
from broker.jsonrpc.methods import (
    DEFAULT_MAX_EXECUTIONS,
    DEFAULT_MAX_OUTPUT,
    NOT_AUTHORIZED,
    SharedResult,
    Workspace,
)

JSON_TYPES = ("application/json", "application/json-rpc", "application/jsonrequest")
TOKEN_AUTHID = "jsonrpc"
ANONYMOUS_AUTHID = "jsonrpc-anonymous"


def token_of(request):
    """The token of a request (query ``token`` or ``Authorization: token …``), or None.

    (The site reads it the same way, before the request is parsed:
    :func:`broker.http_guard.request_token`.)
    """
    header = request.getHeader("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "token" and value.strip():
            return value.strip()
    values = request.args.get(b"token")
    if values:
        return values[0].decode("utf-8", "replace")
    return None


def credentials_of(request):
    """A request's :class:`~broker.http_guard.BasicCredentials`, else its token, else None."""
    for header in request.requestHeaders.getRawHeaders(b"authorization") or ():
        basic = basic_credentials(header.decode("latin-1"))
        if basic is not None:
            return basic
    return token_of(request)


def peer_of(request):
    """The request's client as Autobahn names a WAMP peer (``tcp4:127.0.0.1:40312``)."""
    return peer_name(request.getClientAddress())


class JsonRpcResource(Resource):
    """The ``/jsonrpc`` endpoint of the site.

    *attach* is ``attach(app_session, principal)``, connecting a session to
    the router; *authenticate* is ``authenticate(authmethod, authid, secret, peer)``,
    a :class:`~broker.auth.Principal` or None, decided by the authenticators
    sessions joining *realm* meet.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, attach, authenticate, realm, reactor, max_body=DEFAULT_MAX_BODY,
                 max_executions=DEFAULT_MAX_EXECUTIONS, max_output=DEFAULT_MAX_OUTPUT):
        super().__init__()
        self.attach = attach
        self.authenticate = authenticate
        self.realm = realm
        self.reactor = reactor
        self.max_body = max_body
        self.limits = {"max_executions": max_executions, "max_output": max_output}
        self._workspaces = {}  # authid -> SharedResult of a Workspace

    def principal(self, request):
        """Who the request is from, or None if its credentials are wrong or missing."""
        return self.principal_for(credentials_of(request), peer_of(request))

    def admits(self, credentials, peer):
        """True if a request with *credentials* from *peer* may send a body (asked at its headers)."""
        return self.principal_for(credentials, peer) is not None

    def principal_for(self, credentials, peer):
        """Who a request with *credentials* (Basic, a token or None) from *peer* is, or None."""
        return sign_in(self.authenticate, credentials, peer, TOKEN_AUTHID, ANONYMOUS_AUTHID)

    def render_GET(self, request):
        request.setHeader(b"allow", b"POST")
        return self._refuse(request, 405, protocol.INVALID_REQUEST,
                            "JSON-RPC requests are POSTed to this URL")

    def render_POST(self, request):
        principal = self.principal(request)
        if principal is None:
            request.responseHeaders.setRawHeaders(
                b"www-authenticate", [b"token", b'Basic realm="webkernel"'])
            return self._refuse(request, 401, NOT_AUTHORIZED, NOT_SIGNED_IN)
        content_type = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            return self._refuse(request, 415, protocol.INVALID_REQUEST,
                                "send the request with Content-Type: application/json")
        body = self._body(request)
        if body is None:
            return self._refuse(request, 413, protocol.INVALID_REQUEST,
                                f"the request body is larger than {self.max_body} bytes")
        d = self._workspace(principal).addCallback(lambda ws: protocol.handle(body, ws.methods()))
        finished = request.notifyFinish()
        finished.addErrback(lambda _: d.cancel())
        d.addCallbacks(lambda response: self._respond(request, 200, response),
                       lambda failure: self._failed(request, failure, finished))
        return NOT_DONE_YET

    def _body(self, request):
        length = request.getHeader("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            return None
        request.content.seek(0)
        body = request.content.read(self.max_body + 1)
        return body if len(body) <= self.max_body else None

    def _workspace(self, principal):
        shared = self._workspaces.get(principal.authid)
        if shared is None:
            session = ClientSession(types.ComponentConfig(realm=self.realm))
            self.attach(session, principal)
            joined = session.joined.addCallback(
                lambda s: Workspace(AsyncClient(s, self.reactor), **self.limits))
            shared = self._workspaces[principal.authid] = SharedResult(joined)
            session.when_closed().addCallback(lambda _: self._forget(principal.authid, shared))
        return shared.wait()

    def _forget(self, authid, shared):
        if self._workspaces.get(authid) is shared:
            del self._workspaces[authid]

    def _refuse(self, request, status, code, message):
        error = protocol.error_response(protocol.JsonRpcError(code, message))
        self._respond(request, status, error)
        return NOT_DONE_YET

    def _respond(self, request, status, response):
        if request.finished or request.channel is None:
            return  # the client went away
        body = protocol.encode(response)
        request.setResponseCode(status)
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        if body:
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"content-length", str(len(body)).encode("ascii"))
        request.write(body)
        request.finish()

    def _failed(self, request, failure, finished):
        if finished.called:
            return  # canceled because the client went away
        self.log.failure("JSON-RPC request failed", failure)
        error = protocol.error_response(
            protocol.JsonRpcError(protocol.INTERNAL_ERROR, "internal error"))
        self._respond(request, 200, error)
