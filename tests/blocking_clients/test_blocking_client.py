"""The blocking client (``broker.client.connect``) against the real service with toy kernels.

crochet runs the reactor in a background thread of this process; the
service is the real one in a subprocess (``tests.toy_service``).
Every call is bounded by the client's timeout.
"""

import queue
import signal
import threading
import unittest

import pytest

from broker.client import ExecutionFailed, NoSuchKernel, NotAuthorized, Timeout, connect
from tests.service import ServiceProcess

TOKEN = "blocking-test-token"
WAIT = 10
pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside crochet 2.1


class BlockingClientTests(unittest.TestCase):
    """The seed session and its callbacks, from a script's point of view."""

    @classmethod
    def setUpClass(cls):
        cls.service = ServiceProcess("--token", TOKEN, module="tests.toy_service")
        cls.url = f"http://127.0.0.1:{cls.service.port}/?token={TOKEN}"

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    def client(self):
        client = connect(self.url, timeout=WAIT)
        self.addCleanup(client.close)
        return client

    def test_seed_session(self):
        """connect(url, token=…).start_kernel().eval_cell('2+3') == '5', with state between calls."""
        url = f"ws://127.0.0.1:{self.service.port}/ws"
        client = connect(url, token=TOKEN, timeout=WAIT)
        self.addCleanup(client.close)
        k = client.start_kernel()
        self.assertEqual(k.eval_cell("2+3"), "5")
        k.eval_cell("a = 5")
        self.assertEqual(k.eval_cell("a * 2"), "10")

    def test_execution_failed(self):
        """eval_cell raises ExecutionFailed with ename, evalue and traceback."""
        k = self.client().start_kernel()
        with self.assertRaises(ExecutionFailed) as raised:
            k.eval_cell("int('x')")
        self.assertEqual(raised.exception.ename, "ValueError")
        self.assertIn("invalid literal", raised.exception.evalue)
        self.assertTrue(raised.exception.traceback)

    def test_callbacks_run_in_the_calling_thread(self):
        """on_output gets stdout in order and on_input answers input(), both in the caller's thread."""
        k = self.client().start_kernel()
        lines, threads = [], set()

        def output(message):
            threads.add(threading.current_thread())
            if message["msg_type"] == "stream":
                lines.append(message["content"]["text"])

        def answer(prompt, password):
            threads.add(threading.current_thread())
            return prompt.upper()
        result = k.execute("for i in range(3): print(i)\nprint(input('yes? '))",
                           on_output=output, on_input=answer)
        self.assertEqual(result["status"], "ok")
        self.assertEqual("".join(lines), "0\n1\n2\nYES? \n")  # lines that came together may be merged
        self.assertEqual(threads, {threading.current_thread()})

    def test_callback_exception_is_raised_and_interrupts(self):
        """An exception in on_output is raised by execute, and the code is interrupted."""
        k = self.client().start_kernel()

        def stop(message):
            if message["msg_type"] == "stream":
                raise LookupError("enough")
        with self.assertRaises(LookupError):
            k.execute("print(1)\nwhile True: pass", on_output=stop)
        self.assertEqual(k.eval_cell("'still here'"), "'still here'")

    def test_timeout(self):
        """A call that outlasts its timeout raises Timeout and the code is interrupted."""
        k = self.client().start_kernel()
        with self.assertRaises(Timeout):
            k.eval_cell("while True: pass", timeout=0.5)
        self.assertEqual(k.eval_cell("1"), "1")

    def test_ctrl_c_cancels_and_interrupts(self):
        """Ctrl-C (SIGINT) while eval_cell waits raises KeyboardInterrupt and interrupts the code."""
        k = self.client().start_kernel()
        main = threading.main_thread()

        def press_ctrl_c(message):
            if message["msg_type"] == "execute_input" and "while" in message["content"]["code"]:
                signal.pthread_kill(main.ident, signal.SIGINT)
        watch = k.watch(press_ctrl_c)
        with self.assertRaises(KeyboardInterrupt):
            k.eval_cell("while True: pass")
        watch.stop()
        self.assertEqual(k.eval_cell("'interrupted'"), "'interrupted'")

    def test_watch_in_its_own_thread(self):
        """watch delivers iopub messages in order, in a thread that may call the client."""
        client = self.client()
        k = client.start_kernel()
        seen = queue.SimpleQueue()

        def watched(message):
            asked = k.kernel_info()["status"] if message["msg_type"] == "execute_input" else None
            seen.put((message["msg_type"], asked))
        watch = k.watch(watched)
        k.execute("print('watched')")
        got = [seen.get(timeout=WAIT) for _ in range(4)]
        watch.stop()
        self.assertEqual(got, [("status", None), ("execute_input", "ok"), ("stream", None), ("status", None)])

    def test_attach_and_context_managers(self):
        """kernel(id) attaches to a running kernel; leaving a kernel's `with` shuts it down."""
        with connect(self.url, timeout=WAIT) as client:
            with client.start_kernel() as k:
                k.eval_cell("x = 'kept'")
                self.assertEqual(self.client().kernel(k.id).eval_cell("x"), "'kept'")
            with self.assertRaises(NoSuchKernel):
                client.kernel(k.id)

    def test_wrong_token(self):
        """A wrong token raises NotAuthorized."""
        with self.assertRaises(NotAuthorized):
            connect(f"ws://127.0.0.1:{self.service.port}/ws", token="wrong", timeout=WAIT)

    def test_ping_settings_reach_the_connection(self):
        """connect(ping_interval=, ping_timeout=) sets the WebSocket's auto-ping; bad values are a ValueError."""
        client = connect(self.url, timeout=WAIT, ping_interval=2.5, ping_timeout=7.5)
        self.addCleanup(client.close)
        protocol = client.async_client.session._transport
        self.assertEqual((protocol.autoPingInterval, protocol.autoPingTimeout), (2.5, 7.5))
        with self.assertRaises(ValueError):
            connect(self.url, timeout=WAIT, ping_interval=0)
