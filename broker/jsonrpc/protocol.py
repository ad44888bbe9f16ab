"""JSON-RPC 2.0 (https://www.jsonrpc.org/specification), independent of HTTP and kernels.

:func:`handle` takes a request body and a table of methods and produces the
response body: single calls and batches, notifications (no response),
positional and named parameters, and the standard error codes. A method
returns a value or a Deferred; it raises :class:`JsonRpcError` for an
error the caller should see. Anything else it raises is logged and answered
with ``-32603`` and no detail.

Batch members run one after another, in order (the spec allows any order;
for code that runs in a kernel, order is what a caller means).
"""

import base64
import inspect
import json

from twisted.internet import defer
from twisted.logger import Logger

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

log = Logger()


class JsonRpcError(Exception):
    """An error answered to the caller: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_dict(self):
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class InvalidParams(JsonRpcError):
    """The parameters do not fit the method (count, names or types)."""

    def __init__(self, message, data=None):
        super().__init__(INVALID_PARAMS, message, data)


def error_response(error, request_id=None):
    return {"jsonrpc": "2.0", "error": error.as_dict(), "id": request_id}


def _valid_id(request_id):
    return request_id is None or (isinstance(request_id, (str, int, float))
                                  and not isinstance(request_id, bool))


def _jsonable(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return repr(value)


def encode(response):
    """The response (a dict, a list of them, or None) as bytes; bytes values become base64."""
    if response is None:
        return b""
    return json.dumps(response, default=_jsonable, separators=(",", ":")).encode("utf-8")


@defer.inlineCallbacks
def handle(body, methods):
    """The JSON-RPC response to *body* (bytes), as a JSON-able object or None.

    *methods* maps method names to callables; parameters are bound to their
    signatures.
    """
    try:
        decoded = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return error_response(JsonRpcError(PARSE_ERROR, f"parse error: {e}"))
    except RecursionError:  # Python's parser recurses once per level of nesting
        return error_response(JsonRpcError(PARSE_ERROR, "parse error: the body is nested too deeply"))
    if not isinstance(decoded, list):
        return (yield handle_one(decoded, methods))
    if not decoded:
        return error_response(JsonRpcError(INVALID_REQUEST, "invalid request: empty batch"))
    responses = []
    for request in decoded:
        response = yield handle_one(request, methods)
        if response is not None:
            responses.append(response)
    return responses or None


def _parse(request, methods):
    """``(request_id, is_notification, function, args, kwargs)``, or raise JsonRpcError."""
    if not isinstance(request, dict):
        raise JsonRpcError(INVALID_REQUEST, "invalid request: not a JSON object")
    if request.get("jsonrpc") != "2.0":
        raise JsonRpcError(INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
    method, params = request.get("method"), request.get("params", [])
    if not isinstance(method, str):
        raise JsonRpcError(INVALID_REQUEST, 'invalid request: "method" must be a string')
    if not isinstance(params, (list, dict)):
        raise JsonRpcError(INVALID_REQUEST, 'invalid request: "params" must be an array or object')
    if method not in methods:
        raise JsonRpcError(METHOD_NOT_FOUND, f"method not found: {method!r}",
                           {"methods": sorted(methods)})
    function = methods[method]
    args, kwargs = (params, {}) if isinstance(params, list) else ([], params)
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as e:
        raise InvalidParams(f"invalid params for {method}: {e}") from None
    return function, args, kwargs


@defer.inlineCallbacks
def handle_one(request, methods):
    """The response to one request object (None for a notification).

    A malformed request is answered even without an ``id``; a notification's
    other errors are not (the spec: notifications are not confirmable).
    """
    request_id = request.get("id") if isinstance(request, dict) else None
    if not _valid_id(request_id):
        return error_response(JsonRpcError(INVALID_REQUEST, 'invalid request: bad "id"'))
    try:
        function, args, kwargs = _parse(request, methods)
    except JsonRpcError as e:
        if e.code == INVALID_REQUEST or "id" in request:
            return error_response(e, request_id)
        return None
    try:
        result = yield defer.maybeDeferred(function, *args, **kwargs)
    except JsonRpcError as e:
        response = error_response(e, request_id)
    except defer.CancelledError:
        raise
    except Exception:
        log.failure("JSON-RPC method {method} failed", method=request["method"])
        response = error_response(JsonRpcError(INTERNAL_ERROR, "internal error"), request_id)
    else:
        response = {"jsonrpc": "2.0", "result": result, "id": request_id}
    return response if "id" in request else None
