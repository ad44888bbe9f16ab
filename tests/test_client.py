"""The Twisted-native client (``broker.client.connect_async``) against the real service with toy kernels.

The service is the real one in a subprocess (``tests.toy_service``: router,
site, kernel host) whose kernels are the toys of ``tests.toy_kernel``; the
client connects over a real loopback WebSocket with the token, as a user
would. Waits are bounded.
"""

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker.client import (
    ConnectionFailed,
    ExecutionFailed,
    KernelError,
    NoSuchKernel,
    NoSuchKernelSpec,
    NotAuthorized,
    Timeout,
    connect_async,
)
from broker.client.errors import ConnectionLost, from_wamp
from broker.client.session import service_address
from broker.kernel.results import seq_range
from tests.service import ServiceProcess

WAIT = 10
TOKEN = "client-test-token"


def bounded(d, seconds=WAIT):
    return d.addTimeout(seconds, reactor)


class ServiceAddressTests(SynchronousTestCase):
    """Which WebSocket and token a URL names."""

    def test_logged_url(self):
        """The URL the service logs gives its /ws WebSocket and the token from the query."""
        self.assertEqual(service_address("http://127.0.0.1:8080/?token=abc"),
                         ("ws://127.0.0.1:8080/ws", "abc"))
        self.assertEqual(service_address("https://example.org/?token=abc", token="given"),
                         ("wss://example.org/ws", "given"))

    def test_websocket_url(self):
        """A ws:// URL is used as it is; without a path it means /ws."""
        self.assertEqual(service_address("ws://h:1/ws", "t"), ("ws://h:1/ws", "t"))
        self.assertEqual(service_address("ws://h:1"), ("ws://h:1/ws", None))

    def test_not_a_service_url(self):
        """Anything else is refused with a message saying what to give."""
        self.assertRaises(ValueError, service_address, "ftp://h/")
        self.assertRaises(ValueError, service_address, "127.0.0.1:8080")


class ErrorMappingTests(SynchronousTestCase):
    """WAMP errors become exceptions named for their condition, keeping their URI."""

    def test_known_uris(self):
        """Each documented URI has its class; the message and payload are kept."""
        e = from_wamp(ApplicationError("webkernel.error.execution_failed", "NameError: x",
                                       ename="NameError", evalue="x", traceback=["tb"]))
        self.assertIsInstance(e, ExecutionFailed)
        self.assertEqual((e.uri, str(e), e.ename, e.evalue, e.traceback),
                         ("webkernel.error.execution_failed", "NameError: x", "NameError", "x", ["tb"]))
        lines = from_wamp(ApplicationError("webkernel.error.execution_failed", "E: v", ename="E",
                                           evalue="v", traceback="a\nb", traceback_lines=["a\n", "b"]))
        self.assertEqual(lines.traceback, ["a\n", "b"])
        self.assertIsInstance(from_wamp(ApplicationError("webkernel.error.no_such_kernel", "m")),
                              NoSuchKernel)
        self.assertIsInstance(from_wamp(ApplicationError("wamp.error.timeout")), Timeout)

    def test_unknown_and_closing_uris(self):
        """An unknown URI is a plain KernelError with that URI; a session close is ConnectionLost."""
        e = from_wamp(ApplicationError("com.example.oops", "bad", 1))
        self.assertEqual((type(e), e.uri, e.message, e.error_args), (KernelError, "com.example.oops", "bad", [1]))
        self.assertIsInstance(from_wamp(ApplicationError("wamp.close.system_shutdown")), ConnectionLost)


@pytest.mark.integration
class AsyncClientTests(TestCase):
    """The kernel API through the Deferred client, over a real WebSocket."""

    timeout = 60

    @classmethod
    def setUpClass(cls):
        cls.service = ServiceProcess("--token", TOKEN, module="tests.toy_service")

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.service.port}/?token={TOKEN}"

    @defer.inlineCallbacks
    def client(self, **kwargs):
        client = yield connect_async(self.url, timeout=WAIT, **kwargs)
        self.addCleanup(client.close)
        return client

    @defer.inlineCallbacks
    def kernel(self):
        client = yield self.client()
        kernel = yield client.start_kernel()
        return kernel

    @defer.inlineCallbacks
    def test_seed_session(self):
        """eval_cell('2+3') is '5', and names defined by one call are there for the next."""
        kernel = yield self.kernel()
        self.assertEqual((yield kernel.eval_cell("2+3")), "5")
        self.assertEqual((yield kernel.eval_cell("a = 20")), "")
        self.assertEqual((yield kernel.eval_cell("a + 1")), "21")

    @defer.inlineCallbacks
    def test_execution_failed(self):
        """Code that raises fails eval_cell with ExecutionFailed carrying ename, evalue, traceback."""
        kernel = yield self.kernel()
        failure = yield self.assertFailure(kernel.eval_cell("1/0"), ExecutionFailed)
        self.assertEqual((failure.ename, failure.evalue, failure.uri),
                         ("ZeroDivisionError", "division by zero", "webkernel.error.execution_failed"))
        self.assertIn("ZeroDivisionError: division by zero\n", failure.traceback)

    @defer.inlineCallbacks
    def test_execute_streams_outputs_in_order(self):
        """on_output sees every output as it happens, in seq order, covering what the final result lists.

        Lines that reach the service together may come as one merged stream output
        (``coalesced: [first, last]``), as a slow connection's do.
        """
        kernel = yield self.kernel()
        seen = []
        result = yield kernel.execute("for i in range(5): print(i)\n'done'", on_output=seen.append)
        self.assertEqual(result["status"], "ok")
        covered = [seq for o in seen for seq in range(seq_range(o)[0], seq_range(o)[1] + 1)]
        self.assertEqual(covered, [o["seq"] for o in result["outputs"]])
        stdout = "".join(o["content"]["text"] for o in seen if o["msg_type"] == "stream")
        self.assertEqual(stdout, "0\n1\n2\n3\n4\n")
        self.assertEqual(seen[-2]["content"]["data"]["text/plain"], "'done'")

    @defer.inlineCallbacks
    def test_input_answered_by_callback(self):
        """input() in the code is answered by on_input(prompt, password), also with a Deferred."""
        kernel = yield self.kernel()
        prompts = []

        def answer(prompt, password):
            prompts.append((prompt, password))
            return defer.succeed("Ada")
        text = yield kernel.execute("name = input('who? ')\nprint('hello', name)",
                                    on_output=lambda o: None, on_input=answer)
        self.assertEqual(prompts, [("who? ", False)])
        self.assertEqual((yield kernel.eval_cell("name")), "'Ada'")
        self.assertEqual(text["status"], "ok")

    @defer.inlineCallbacks
    def test_input_without_callback_is_refused(self):
        """Without on_input the kernel is told there is no stdin, so input() fails instead of hanging."""
        kernel = yield self.kernel()
        result = yield kernel.execute("input()")
        self.assertEqual((result["status"], result["reply"]["ename"]),
                         ("error", "StdinNotImplementedError"))

    @defer.inlineCallbacks
    def test_interrupt(self):
        """interrupt() stops `while True: pass`; the execution ends with KeyboardInterrupt."""
        kernel = yield self.kernel()
        running = defer.Deferred()

        def started(output):
            if output["msg_type"] == "execute_input" and not running.called:
                running.callback(None)
        execution = kernel.execute("while True: pass", on_output=started)
        yield bounded(running)
        yield kernel.interrupt()
        result = yield bounded(execution)
        self.assertEqual((result["status"], result["reply"]["ename"]), ("error", "KeyboardInterrupt"))
        self.assertEqual((yield kernel.eval_cell("1")), "1")

    @defer.inlineCallbacks
    def test_callback_error_cancels_execution(self):
        """An exception in on_output cancels the call (interrupting the code) and is what execute fails with."""
        kernel = yield self.kernel()

        def broken(output):
            if output["msg_type"] == "stream":
                raise ValueError("my callback broke")
        execution = kernel.execute("print('x')\nwhile True: pass", on_output=broken)
        yield self.assertFailure(bounded(execution), ValueError)
        self.assertEqual((yield bounded(kernel.eval_cell("2*21"))), "42")

    @defer.inlineCallbacks
    def test_timeout_interrupts(self):
        """A call timeout fails with Timeout and the service interrupts the code."""
        kernel = yield self.kernel()
        yield self.assertFailure(kernel.execute("while True: pass", timeout=0.5), Timeout)
        self.assertEqual((yield bounded(kernel.eval_cell("'free'"))), "'free'")

    @defer.inlineCallbacks
    def test_restart_clears_state(self):
        """restart() keeps the id and forgets the names."""
        kernel = yield self.kernel()
        yield kernel.eval_cell("b = 1")
        model = yield kernel.restart()
        self.assertEqual(model["id"], kernel.id)
        failure = yield self.assertFailure(kernel.eval_cell("b"), ExecutionFailed)
        self.assertEqual(failure.ename, "NameError")

    @defer.inlineCallbacks
    def test_attach_list_and_shutdown(self):
        """kernels() lists a started kernel; kernel(id) attaches to it; after shutdown it is gone."""
        client = yield self.client()
        kernel = yield client.start_kernel()
        yield kernel.eval_cell("shared = 'yes'")
        other = yield (yield self.client()).kernel(kernel.id)
        self.assertEqual((yield other.eval_cell("shared")), "'yes'")
        self.assertIn(kernel.id, [m["id"] for m in (yield client.kernels())])
        yield kernel.shutdown()
        yield self.assertFailure(kernel.eval_cell("1"), NoSuchKernel)
        yield self.assertFailure(client.kernel(kernel.id), NoSuchKernel)

    @defer.inlineCallbacks
    def test_kernelspecs_and_unknown_kernelspec(self):
        """kernelspecs() has Jupyter Server's shape; an unknown name fails with NoSuchKernelSpec."""
        client = yield self.client()
        specs = yield client.kernelspecs()
        self.assertIn(specs["default"], specs["kernelspecs"])
        yield self.assertFailure(client.start_kernel("no-such-language"), NoSuchKernelSpec)

    @defer.inlineCallbacks
    def test_watch(self):
        """watch() delivers the kernel's iopub messages in order until stopped."""
        kernel = yield self.kernel()
        watched, idle = [], defer.Deferred()

        def seen(output):
            watched.append(output)
            if output["msg_type"] == "status" and output["content"]["execution_state"] == "idle":
                idle.callback(None)
        watch = yield kernel.watch(seen)
        yield kernel.execute("print('watched')")
        yield bounded(idle)
        yield watch.stop()
        kinds = [o["msg_type"] for o in watched]
        self.assertEqual(kinds, ["status", "execute_input", "stream", "status"])
        self.assertEqual(watched[2]["content"]["text"], "watched\n")

    @defer.inlineCallbacks
    def test_outputs_complete_inspect(self):
        """outputs(since) returns the history after a seq; complete and inspect return Jupyter replies."""
        kernel = yield self.kernel()
        yield kernel.eval_cell("value = 3")
        history = yield kernel.outputs(since=0)
        self.assertTrue(history["complete"])
        self.assertEqual([o["seq"] for o in history["outputs"]], list(range(1, history["last_seq"] + 1)))
        completion = yield kernel.complete("val")
        self.assertIn("value", completion["matches"])
        self.assertTrue((yield kernel.inspect("value"))["found"])

    @defer.inlineCallbacks
    def test_wrong_token_and_no_service(self):
        """A wrong token fails with NotAuthorized; nothing listening fails with ConnectionFailed."""
        yield self.assertFailure(
            connect_async(f"ws://127.0.0.1:{self.service.port}/ws", token="wrong", timeout=WAIT),
            NotAuthorized)
        yield self.assertFailure(connect_async("ws://127.0.0.1:1/ws", timeout=WAIT), ConnectionFailed)
