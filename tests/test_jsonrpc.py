"""``POST /jsonrpc`` over real HTTP, with the stock ``jsonrpclib-pelix`` client and with raw requests.

The service is the real one in a subprocess (``tests.toy_service``: router,
site, JSON-RPC resource, kernel host) with toy kernels. Every HTTP request has a
timeout; waiting for an execution uses the ``wait`` method, not sleeps.
"""

import http.client
import json
import socket
import urllib.error
import urllib.request

import pytest
from jsonrpclib import ServerProxy
from jsonrpclib.jsonrpc import ProtocolError, TransportError
from twisted.trial.unittest import SynchronousTestCase

from tests.service import ServiceProcess

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

TOKEN = "jsonrpc-test-token"
WAIT = 10


class HttpClient:
    """Raw JSON-RPC over HTTP, for what the stock client hides (error data, status codes)."""

    def __init__(self, port, token=TOKEN):
        self.port = port
        self.token = token

    def url(self, token=None):
        token = self.token if token is None else token
        return f"http://127.0.0.1:{self.port}/jsonrpc" + (f"?token={token}" if token else "")

    def post(self, body, token=None, headers=None, method="POST"):
        """``(status, decoded body or None)``."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url(token), data=None if method == "GET" else data, method=method,
            headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return status, (json.loads(raw) if raw else None)

    def call(self, method, *params, **named):
        status, response = self.post({"jsonrpc": "2.0", "method": method,
                                      "params": named or list(params), "id": 1})
        return response


class JsonRpcTests(SynchronousTestCase):
    """The seed's eval_cell and the background execute, for a token holder."""

    @classmethod
    def setUpClass(cls):
        cls.service = ServiceProcess("--token", TOKEN, module="tests.toy_service")
        cls.http = HttpClient(cls.service.port)

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    def proxy(self, **kwargs):
        return ServerProxy(self.http.url(), **kwargs)

    def test_seed_session_with_stock_client(self):
        """jsonrpclib's ServerProxy: eval_cell('2+3') is '5', state is kept, named params work."""
        proxy = self.proxy()
        self.assertEqual(proxy.eval_cell("2+3"), "5")
        self.assertEqual(proxy.eval_cell(code="seed = 6"), "")
        self.assertEqual(proxy.eval_cell("seed * 7"), "42")

    def test_execution_failed(self):
        """Code that raises is error -32000 'ename: evalue'; data has the URI, ename, evalue and traceback."""
        with self.assertRaises(ProtocolError) as raised:
            self.proxy().eval_cell("1/0")
        self.assertEqual(raised.exception.args[0], (-32000, "ZeroDivisionError: division by zero"))
        error = self.http.call("eval_cell", "undefined_name")["error"]
        self.assertEqual((error["code"], error["data"]["uri"], error["data"]["ename"]),
                         (-32000, "webkernel.error.execution_failed", "NameError"))
        self.assertTrue(error["data"]["traceback"])

    def test_token_required(self):
        """No token or a wrong one is HTTP 401 with a JSON-RPC error; the Authorization header works too."""
        for token in ("", "wrong"):
            status, response = self.http.post({"jsonrpc": "2.0", "method": "eval_cell",
                                               "params": ["1"], "id": 1}, token=token)
            self.assertEqual((status, response["error"]["code"]), (401, -32001))
        proxy = ServerProxy(self.http.url(token=""), headers={"Authorization": f"token {TOKEN}"})
        self.assertEqual(proxy.eval_cell("'header'"), "'header'")
        with self.assertRaises(TransportError):
            ServerProxy(self.http.url(token="wrong")).eval_cell("1")

    def test_execute_in_background(self):
        """execute returns a handle; wait, get_stdout, get_stderr and get_output report the execution."""
        proxy = self.proxy()
        handle = proxy.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)\n6*7")
        status = proxy.wait(handle, WAIT)
        self.assertEqual((status["status"], status["done"], status["handle"]), ("ok", True, handle))
        self.assertEqual((proxy.get_stdout(handle), proxy.get_stderr(handle), proxy.get_output(handle)),
                         ("out\n", "err\n", "42"))
        self.assertEqual(proxy.status(handle), status)

    def test_execute_error_status(self):
        """A failing background execution reports status error with ename and evalue."""
        proxy = self.proxy()
        status = proxy.wait(proxy.execute("raise KeyError('k')"), WAIT)
        self.assertEqual((status["status"], status["error"]["ename"]), ("error", "KeyError"))

    def test_input(self):
        """input() in a background execution shows in its status; input(handle, value) answers it."""
        proxy = self.proxy()
        handle = proxy.execute("name = input('who? ')\nprint('hi', name)")
        status = proxy.wait(handle, WAIT)
        self.assertEqual((status["done"], status["input_request"]), (False, {"prompt": "who? ", "password": False}))
        self.assertIsNone(proxy.input(handle, "Ada"))
        self.assertEqual(proxy.wait(handle, WAIT)["status"], "ok")
        self.assertEqual(proxy.get_stdout(handle), "hi Ada\n")
        error = self.http.call("input", handle, "again")["error"]
        self.assertEqual((error["code"], error["data"]["uri"]), (-32007, "webkernel.error.no_pending_input"))

    def test_unknown_and_dropped_handles(self):
        """An unknown handle is -32003; only the newest 100 executions are kept."""
        self.assertEqual(self.http.call("get_stdout", "nope")["error"]["code"], -32003)
        batch = [{"jsonrpc": "2.0", "method": "execute", "params": ["pass"], "id": i} for i in range(101)]
        status, responses = self.http.post(batch)
        handles = [r["result"] for r in sorted(responses, key=lambda r: r["id"])]
        self.assertEqual(self.http.call("get_stdout", handles[0])["error"]["code"], -32003)
        self.assertEqual(self.http.call("wait", handles[-1], WAIT)["result"]["status"], "ok")

    def test_batch_and_notifications(self):
        """A batch runs in order; notifications run without a response, also from the stock client."""
        status, responses = self.http.post([
            {"jsonrpc": "2.0", "method": "eval_cell", "params": ["batched = 1"]},
            {"jsonrpc": "2.0", "method": "eval_cell", "params": ["batched + 1"], "id": "b"},
            {"jsonrpc": "2.0", "method": "no_such_method", "id": "c"},
        ])
        self.assertEqual((status, [r["id"] for r in responses]), (200, ["b", "c"]))
        self.assertEqual((responses[0]["result"], responses[1]["error"]["code"]), ("2", -32601))
        proxy = self.proxy()
        self.assertIsNone(proxy._notify.eval_cell("notified = 'yes'"))
        self.assertEqual(proxy.eval_cell("notified"), "'yes'")

    def test_complete_interrupt_restart(self):
        """complete lists names; interrupt stops a running loop; restart forgets the names."""
        proxy = self.proxy()
        proxy.eval_cell("restart_me = 1")
        self.assertIn("restart_me", proxy.complete("restart_")["matches"])
        handle = proxy.execute("while True: pass")
        self.assertIsNone(proxy.interrupt())
        status = proxy.wait(handle, WAIT)
        self.assertEqual((status["status"], status["error"]["ename"]), ("error", "KeyboardInterrupt"))
        model = proxy.restart()
        self.assertEqual(model["id"], status["kernel_id"])
        self.assertEqual(self.http.call("eval_cell", "restart_me")["error"]["data"]["ename"], "NameError")

    def test_explicit_kernels(self):
        """start_kernel gives an id other methods take as kernel_id; its state is its own."""
        proxy = self.proxy()
        kernel_id = proxy.start_kernel()["id"]
        proxy.eval_cell("mine = 'own'", kernel_id)
        self.assertEqual(proxy.eval_cell(code="mine", kernel_id=kernel_id), "'own'")
        self.assertIn(kernel_id, [m["id"] for m in proxy.kernels()])
        self.assertEqual(self.http.call("eval_cell", "mine")["error"]["data"]["ename"], "NameError")
        self.assertIsNone(proxy.shutdown(kernel_id))
        error = self.http.call("eval_cell", "1", kernel_id)["error"]
        self.assertEqual((error["code"], error["data"]["uri"]), (-32002, "webkernel.error.no_such_kernel"))

    def test_default_kernel_replaced_when_gone(self):
        """If the default kernel was shut down elsewhere, the next call starts a new one and runs there."""
        proxy = self.proxy()
        old = proxy.wait(proxy.execute("pass"), WAIT)["kernel_id"]
        proxy.shutdown(old)
        self.assertEqual(proxy.eval_cell("'fresh'"), "'fresh'")
        second = proxy.wait(proxy.execute("pass"), WAIT)["kernel_id"]
        self.assertNotEqual(second, old)
        proxy.shutdown(second)
        status = proxy.wait(proxy.execute("print('rerun')"), WAIT)
        self.assertEqual(status["status"], "ok")
        self.assertNotIn(status["kernel_id"], (old, second))
        self.assertEqual(proxy.get_stdout(status["handle"]), "rerun\n")

    def test_bad_params(self):
        """A malformed kernel_id or a code that is not a string is -32602."""
        self.assertEqual(self.http.call("eval_cell", "1", "Not An Id!")["error"]["code"], -32602)
        self.assertEqual(self.http.call("eval_cell", 12)["error"]["code"], -32602)
        self.assertEqual(self.http.call("eval_cell")["error"]["code"], -32602)

    def test_http_refusals(self):
        """GET is 405, a non-JSON content type 415, a body over 4 MiB 413, bad JSON -32700."""
        self.assertEqual(self.http.post(b"", method="GET")[0], 405)
        status, response = self.http.post(b"{}", headers={"Content-Type": "text/plain"})
        self.assertEqual((status, response["error"]["code"]), (415, -32600))
        self.assertEqual(self.http.post(b" " * (4 * 1024 * 1024 + 1))[0], 413)
        status, response = self.http.post(b"{not json")
        self.assertEqual((status, response["error"]["code"], response["id"]), (200, -32700, None))

    def test_unauthenticated_chunked_body_is_refused_unread(self):
        """Issue 10's /tmp filler, scaled down: a chunked POST without the token is 401 after its headers, never read in full."""
        with socket.create_connection(("127.0.0.1", self.service.port), timeout=WAIT) as s:
            s.sendall(b"POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                      b"\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n" + b" " * 65536)
            answer = s.recv(4096)
        self.assertTrue(answer.startswith(b"HTTP/1.1 401 "), answer)
        self.assertIn(b"-32001", answer)

    def test_foreign_host_is_refused(self):
        """DNS rebinding: a request naming another host is 421, even with the token."""
        connection = http.client.HTTPConnection("127.0.0.1", self.service.port, timeout=WAIT)
        connection.request("POST", f"/jsonrpc?token={TOKEN}", b"{}",
                           {"Host": "attacker.invalid:8080", "Content-Type": "application/json"})
        response = connection.getresponse()
        self.assertEqual(response.status, 421)
        self.assertIn(b"--allowed-host", response.read())
        connection.close()

    def test_disconnect_interrupts(self):
        """A client that disconnects during eval_cell cancels it: the loop it started is interrupted."""
        connection = http.client.HTTPConnection("127.0.0.1", self.service.port, timeout=WAIT)
        body = json.dumps({"jsonrpc": "2.0", "method": "eval_cell", "params": ["while True: pass"], "id": 1})
        connection.request("POST", f"/jsonrpc?token={TOKEN}", body, {"Content-Type": "application/json"})
        proxy = self.proxy()
        for _ in range(1000):  # bounded: until the loop runs
            if any(m["execution_state"] == "busy" for m in proxy.kernels()):
                break
        else:
            self.fail("the loop never started")
        connection.close()
        self.assertEqual(self.http.call("eval_cell", "'after'")["result"], "'after'")


class AnonymousJsonRpcTests(SynchronousTestCase):
    """With --anonymous, no token is needed (a wrong one is still refused)."""

    @classmethod
    def setUpClass(cls):
        cls.service = ServiceProcess("--anonymous", module="tests.toy_service")
        cls.http = HttpClient(cls.service.port, token="")

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    def test_no_token_needed(self):
        """The stock client works without a token; a wrong token is 401."""
        self.assertEqual(ServerProxy(self.http.url()).eval_cell("2+3"), "5")
        self.assertEqual(self.http.post({"jsonrpc": "2.0", "method": "kernels", "id": 1}, token="bad")[0], 401)
