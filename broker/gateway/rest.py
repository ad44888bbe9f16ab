"""The REST side of the gateway: ``/api/kernelspecs``, ``/api/kernels`` and ``/kernelspecs/<name>/<file>``.

Each route is one small handler that calls the kernel API through the
principal's shared session (:class:`~broker.gateway.sessions.GatewaySessions`)
and answers in Jupyter's shapes (:mod:`broker.gateway.models`). WAMP errors
become HTTP statuses (:data:`STATUS_OF`), with a JSON body
``{"message": …, "reason": <the WAMP error URI>}`` as Jupyter Server answers.
``GET /api/kernels/<id>/channels`` is the kernel WebSocket
(:mod:`broker.gateway.channels`). A ``POST`` must say
``Content-Type: application/json`` (GatewayClient does): a page of another
site cannot send that without a CORS preflight, which is never granted.
"""

import json
import os

from jupyter_client.kernelspec import KernelSpecManager
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from broker import errors
from broker.client.errors import KernelError, NoSuchKernel
from broker.gateway import models
from broker.gateway.ids import dashed, wamp_id
from broker.http_guard import NOT_SIGNED_IN
from broker.kernel import uris

#: HTTP status of each kernel API error (anything else: 500)
STATUS_OF = {
    errors.NO_SUCH_KERNEL: 404, errors.NO_SUCH_PROCEDURE: 404,
    errors.NO_SUCH_KERNELSPEC: 404, errors.KERNEL_LIMIT: 403, errors.NOT_AUTHORIZED: 403,
    errors.KERNEL_NOT_READY: 409, errors.INVALID_ARGUMENT: 400, errors.TIMEOUT: 504,
    errors.KERNEL_START_FAILED: 500, errors.KERNEL_DIED: 500,
}
#: what GET /api answers (GatewayClient does not ask; Kernel Gateway answers it)
API_VERSION = {"version": "webkernel-gateway-1"}


class _Refusal(Exception):
    def __init__(self, status, message, reason=None):
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def _respond(request, status, body=None, headers=()):
    if request.finished or request.channel is None:
        return
    request.setResponseCode(status)
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"x-content-type-options", b"nosniff")
    for name, value in headers:
        request.setHeader(name, value)
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    if body is not None:
        request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", str(len(data)).encode("ascii"))
    request.write(data)
    request.finish()


class GatewayApi(Resource):
    """``/api``: the kernelspecs and kernels of Jupyter's REST API, and the kernel WebSocket.

    *sessions* signs requests in; *channels* (a
    :class:`~broker.gateway.channels.KernelChannels`) serves the WebSocket;
    *ready_timeout* bounds a start (seconds).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, sessions, channels, ready_timeout=60, spec_manager=None):
        super().__init__()
        self.sessions = sessions
        self.channels = channels
        self.ready_timeout = ready_timeout
        self.spec_manager = spec_manager or KernelSpecManager()

    def render(self, request):
        principal = self.sessions.principal(request)
        if principal is None:
            _respond(request, 401, {"message": NOT_SIGNED_IN, "reason": errors.NOT_AUTHORIZED},
                     [(b"www-authenticate", b'Basic realm="webkernel"')])
            return NOT_DONE_YET
        path = [p.decode("utf-8", "replace") for p in request.postpath]
        while path and path[-1] == "":
            path.pop()
        method = request.method.decode("ascii", "replace")
        d = defer.maybeDeferred(self._route, request, method, path, principal)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _route(self, request, method, path, principal):
        if method == "POST":
            kind = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise _Refusal(415, "send the request with Content-Type: application/json")
        if not path:
            return self._only(method, "GET") or _respond(request, 200, API_VERSION)
        if path[0] == "kernelspecs" and len(path) <= 2:
            return self._only(method, "GET") or self._kernelspecs(request, principal, path[1:])
        if path[0] == "kernels":
            return self._kernels(request, method, principal, path[1:])
        raise _Refusal(404, f"no such resource: /api/{'/'.join(path)}")

    @staticmethod
    def _only(method, *allowed):
        if method not in allowed:
            raise _Refusal(405, f"use {' or '.join(allowed)} here")

    def _kernels(self, request, method, principal, rest):
        if not rest:
            self._only(method, "GET", "POST")
            return (self._list if method == "GET" else self._start)(request, principal)
        kernel_id = wamp_id(rest[0])
        if kernel_id is None:
            raise _Refusal(404, f"no kernel {rest[0]!r}: kernel ids are UUIDs", errors.NO_SUCH_KERNEL)
        if len(rest) == 1:
            self._only(method, "GET", "DELETE")
            handler = self._get if method == "GET" else self._shutdown
            return handler(request, principal, kernel_id)
        if len(rest) == 2 and rest[1] in ("interrupt", "restart"):
            self._only(method, "POST")
            return getattr(self, "_" + rest[1])(request, principal, kernel_id)
        if len(rest) == 2 and rest[1] == "channels":
            self._only(method, "GET")
            return self._channels(request, principal, kernel_id)
        raise _Refusal(404, f"no such resource: /api/kernels/{'/'.join(rest)}")

    # -- kernelspecs ----------------------------------------------------------------------

    @defer.inlineCallbacks
    def _kernelspecs(self, request, principal, name):
        client = yield self.sessions.client(principal)
        listing = models.kernelspecs((yield client.kernelspecs()), self._resource_dirs())
        if not name:
            return _respond(request, 200, listing)
        if name[0] not in listing["kernelspecs"]:
            raise _Refusal(404, f"no kernelspec named {name[0]!r}", errors.NO_SUCH_KERNELSPEC)
        _respond(request, 200, listing["kernelspecs"][name[0]])

    def _resource_dirs(self):
        try:
            return self.spec_manager.find_kernel_specs()
        except Exception:
            self.log.failure("cannot list the kernelspecs' directories")
            return {}

    # -- kernels --------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _list(self, request, principal):
        client = yield self.sessions.client(principal)
        found = yield client.kernels()
        _respond(request, 200, [self._model(m) for m in found])

    def _model(self, model):
        return models.kernel_model(model, self.channels.connections(model["id"]))

    @defer.inlineCallbacks
    def _start(self, request, principal):
        request.content.seek(0)
        try:
            body = json.loads(request.content.read() or b"{}")
            name, timeout = models.start_arguments(body, self.ready_timeout)
        except (ValueError, UnicodeDecodeError) as e:
            raise _Refusal(400, str(e) if isinstance(e, models.BadRequest)
                           else f"the body is not JSON: {e}")
        client = yield self.sessions.client(principal)
        named = {} if name is None else {"kernel_name": name}
        model = yield client.call(uris.KERNELS_START, timeout=timeout, **named)
        self.log.info("kernel {kernel_id} started through the gateway by {authid}",
                      kernel_id=model["id"], authid=principal.authid)
        _respond(request, 201, self._model(model),
                 [(b"location", f"/api/kernels/{dashed(model['id'])}".encode("ascii"))])

    @defer.inlineCallbacks
    def find(self, principal, kernel_id):
        """The kernel API's model of *kernel_id* as *principal* sees it; fails with NoSuchKernel."""
        client = yield self.sessions.client(principal)
        for model in (yield client.kernels()):
            if model.get("id") == kernel_id:
                return model
        raise NoSuchKernel(f"no kernel {dashed(kernel_id)}", errors.NO_SUCH_KERNEL)

    @defer.inlineCallbacks
    def _get(self, request, principal, kernel_id):
        _respond(request, 200, self._model((yield self.find(principal, kernel_id))))

    @defer.inlineCallbacks
    def _call(self, principal, kernel_id, name, **kwargs):
        client = yield self.sessions.client(principal)
        return (yield client.call(uris.kernel_procedure(kernel_id, name), **kwargs))

    @defer.inlineCallbacks
    def _shutdown(self, request, principal, kernel_id):
        yield self._call(principal, kernel_id, "shutdown")
        _respond(request, 204)

    @defer.inlineCallbacks
    def _interrupt(self, request, principal, kernel_id):
        yield self._call(principal, kernel_id, "interrupt")
        _respond(request, 204)

    @defer.inlineCallbacks
    def _restart(self, request, principal, kernel_id):
        model = yield self._call(principal, kernel_id, "restart", timeout=self.ready_timeout)
        _respond(request, 200, self._model(model))

    @defer.inlineCallbacks
    def _channels(self, request, principal, kernel_id):
        yield self.find(principal, kernel_id)   # 404 at the handshake for an unknown kernel
        self.channels.take_over(request, principal, kernel_id)

    # -- errors ---------------------------------------------------------------------------

    def _failed(self, failure, request):
        if failure.check(_Refusal):
            e = failure.value
            return _respond(request, e.status, {"message": e.message, "reason": e.reason})
        if failure.check(KernelError):
            e = failure.value
            status = STATUS_OF.get(e.uri, 500)
            if status == 500:
                self.log.failure("gateway request {uri} failed", failure, uri=request.uri)
            return _respond(request, status, {"message": str(e), "reason": e.uri})
        self.log.failure("gateway request {uri} failed", failure, uri=request.uri)
        _respond(request, 500, {"message": "internal error", "reason": None})


class KernelspecFiles(Resource):
    """``/kernelspecs/<name>/<file>``: the logos of the kernelspecs installed here (never other files), to those signed in."""

    isLeaf = True

    def __init__(self, sessions, spec_manager=None):
        super().__init__()
        self.sessions = sessions
        self.spec_manager = spec_manager or KernelSpecManager()

    def render_GET(self, request):
        if self.sessions.principal(request) is None:
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Basic realm="webkernel"')
            return NOT_SIGNED_IN.encode("utf-8") + b"\n"
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        data = self._logo(*parts) if len(parts) == 2 else None
        if data is not None:
            kind = b"image/svg+xml" if parts[1].endswith(".svg") else b"image/png"
            request.setHeader(b"content-type", kind)
            request.setHeader(b"x-content-type-options", b"nosniff")
            request.setHeader(b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'")
            request.setHeader(b"cache-control", b"max-age=3600")
            return data
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"no such kernelspec file\n"

    def _logo(self, name, filename):
        """The bytes of logo *filename* of kernelspec *name*, or None."""
        if not models.LOGO_FILE.fullmatch(filename):
            return None
        directory = self.spec_manager.find_kernel_specs().get(name)
        if not directory:
            return None
        try:
            with open(os.path.join(directory, filename), "rb") as f:
                data = f.read(models.MAX_LOGO_BYTES + 1)
        except OSError:
            return None
        return data if len(data) <= models.MAX_LOGO_BYTES else None
