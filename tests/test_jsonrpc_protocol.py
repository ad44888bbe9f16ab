"""JSON-RPC 2.0 itself (``broker.jsonrpc.protocol``): the specification's cases, with no HTTP and no kernel."""

import json

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from broker.jsonrpc import protocol
from broker.jsonrpc.protocol import JsonRpcError


def subtract(minuend, subtrahend):
    return minuend - subtrahend


def later(value):
    return defer.succeed(value)


def broken():
    raise RuntimeError("secret detail")


def refused():
    raise JsonRpcError(-32000, "refused", {"uri": "x.y"})


class RecordingMethods(dict):
    """The method table, recording the order of calls."""

    def __init__(self):
        self.calls = []
        super().__init__(subtract=subtract, later=later, broken=broken, refused=refused,
                         note=lambda text: self.calls.append(text))


class ProtocolTests(SynchronousTestCase):
    """Requests in, responses out, as the JSON-RPC 2.0 specification's examples show."""

    def setUp(self):
        self.methods = RecordingMethods()

    def handle(self, request):
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        return self.successResultOf(protocol.handle(body, self.methods))

    def error_code(self, response):
        return response["error"]["code"]

    def test_positional_and_named_params(self):
        """Parameters bind by position from an array and by name from an object."""
        self.assertEqual(self.handle({"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}),
                         {"jsonrpc": "2.0", "result": 19, "id": 1})
        named = {"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": "a"}
        self.assertEqual(self.handle(named), {"jsonrpc": "2.0", "result": 19, "id": "a"})

    def test_deferred_result(self):
        """A method may return a Deferred; its result is the response's."""
        self.assertEqual(self.handle({"jsonrpc": "2.0", "method": "later", "params": ["v"], "id": 2})["result"], "v")

    def test_notification_has_no_response(self):
        """A request without id runs but is not answered, even when it fails."""
        self.assertIsNone(self.handle({"jsonrpc": "2.0", "method": "note", "params": ["hi"]}))
        self.assertEqual(self.methods.calls, ["hi"])
        self.assertIsNone(self.handle({"jsonrpc": "2.0", "method": "nope"}))
        self.assertIsNone(self.handle({"jsonrpc": "2.0", "method": "subtract", "params": [1]}))

    def test_parse_error(self):
        """Bytes that are not JSON (or not UTF-8) get -32700 with id null."""
        for body in (b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', b"\xff\xfe"):
            response = self.handle(body)
            self.assertEqual((self.error_code(response), response["id"]), (-32700, None))

    def test_deep_nesting_is_a_parse_error(self):
        """A body nested deeper than the parser recurses is -32700, not an internal error."""
        for body in [b"[" * 100_000, b'{"a":' * 100_000]:
            response = self.handle(body)
            self.assertEqual(self.error_code(response), protocol.PARSE_ERROR)
            self.assertIn("nested too deeply", response["error"]["message"])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_invalid_requests(self):
        """Wrong shapes get -32600, answered even without an id."""
        for request in ({"jsonrpc": "2.0", "method": 1, "params": "bar"}, {"method": "subtract"},
                        {"jsonrpc": "1.0", "method": "subtract", "id": 1}, "text", 1,
                        {"jsonrpc": "2.0", "method": "subtract", "params": "x", "id": 3},
                        {"jsonrpc": "2.0", "method": "subtract", "id": {"an": "object"}}):
            self.assertEqual(self.error_code(self.handle(request)), -32600, request)
        self.assertEqual(self.handle({"jsonrpc": "2.0", "method": "subtract", "params": "x", "id": 3})["id"], 3)

    def test_method_not_found(self):
        """An unknown method gets -32601 naming it; the known ones are in data."""
        response = self.handle({"jsonrpc": "2.0", "method": "foobar", "id": "1"})
        self.assertEqual(self.error_code(response), -32601)
        self.assertIn("subtract", response["error"]["data"]["methods"])

    def test_invalid_params(self):
        """Too few, too many or unknown parameters get -32602."""
        for params in ([1], [1, 2, 3], {"minuend": 1, "other": 2}):
            response = self.handle({"jsonrpc": "2.0", "method": "subtract", "params": params, "id": 1})
            self.assertEqual(self.error_code(response), -32602, params)

    def test_application_and_internal_errors(self):
        """A JsonRpcError is answered as raised; any other exception is -32603 without its detail, and logged."""
        response = self.handle({"jsonrpc": "2.0", "method": "refused", "id": 1})
        self.assertEqual(response["error"], {"code": -32000, "message": "refused", "data": {"uri": "x.y"}})
        response = self.handle({"jsonrpc": "2.0", "method": "broken", "id": 2})
        self.assertEqual(response["error"], {"code": -32603, "message": "internal error"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_batch(self):
        """A batch is answered with one response per non-notification, in order; all-notifications with none."""
        batch = [
            {"jsonrpc": "2.0", "method": "note", "params": ["first"]},
            {"jsonrpc": "2.0", "method": "subtract", "params": [5, 3], "id": "1"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "note", "params": ["second"]},
        ]
        responses = self.handle(batch)
        self.assertEqual([(r["id"], r.get("result"), r.get("error", {}).get("code")) for r in responses],
                         [("1", 2, None), (None, None, -32600), ("5", None, -32601)])
        self.assertEqual(self.methods.calls, ["first", "second"])
        self.assertIsNone(self.handle([{"jsonrpc": "2.0", "method": "note", "params": ["x"]}]))

    def test_bad_batches(self):
        """An empty batch is one -32600; a batch of non-objects is one -32600 each."""
        self.assertEqual(self.error_code(self.handle([])), -32600)
        self.assertEqual([self.error_code(r) for r in self.handle([1, 2, 3])], [-32600] * 3)

    def test_encode(self):
        """Responses encode to compact JSON; bytes become base64; no response is an empty body."""
        self.assertEqual(protocol.encode({"result": b"\x00\x01"}), b'{"result":"AAE="}')
        self.assertEqual(protocol.encode(None), b"")
