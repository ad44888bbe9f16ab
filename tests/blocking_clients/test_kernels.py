"""The seed and SymPy sessions through the blocking client with real ipykernel behind ``twistd webkernel``.

One service (subprocess, with its token) for the module; crochet's reactor
thread in this process. Every call is bounded by the client's timeout.
"""

import unittest

import pytest

from broker.client import ExecutionFailed, connect
from tests.service import ServicePerClass

WAIT = 60
pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside crochet 2.1


class BlockingKernelTests(ServicePerClass, unittest.TestCase):
    """The seed session, as a person types it, against real kernels."""

    kernel_dir_prefix = "webkernel-blocking-"
    service_options = ("--max-kernels", "4")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client = connect(f"http://127.0.0.1:{cls.service.port}/", token=cls.service.token,
                             timeout=WAIT)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        super().tearDownClass()

    def setUp(self):
        self.k = self.client.start_kernel()
        self.addCleanup(self.k.shutdown)

    def test_seed_session(self):
        """2+3 is '5'; a name defined in one call is there in the next."""
        self.assertEqual(self.k.eval_cell("2+3"), "5")
        self.k.eval_cell("a = 'defined'")
        self.assertEqual(self.k.eval_cell("a.upper()"), "'DEFINED'")
        with self.assertRaises(ExecutionFailed) as raised:
            self.k.eval_cell("undefined")
        self.assertEqual(raised.exception.ename, "NameError")
        self.assertTrue(raised.exception.traceback)

    def test_streaming_and_input(self):
        """on_output gets stdout lines in order as they come; on_input answers input()."""
        lines = []

        def output(message):
            if message["msg_type"] == "stream":
                lines.append(message["content"]["text"])
        result = self.k.execute(
            "for i in range(5): print(i, flush=True)\nprint('hello', input('name? '))",
            on_output=output, on_input=lambda prompt, password: f"<{prompt.strip()}>")
        self.assertEqual(result["status"], "ok")
        self.assertEqual("".join(lines), "0\n1\n2\n3\n4\nhello <name?>\n")

    def test_interrupt_and_restart(self):
        """interrupt() from the output callback stops `while True: pass`; restart() forgets the names."""
        self.k.eval_cell("kept = 1")

        def interrupt_when_looping(message):
            if message["msg_type"] == "stream" and "looping" in message["content"]["text"]:
                self.k.interrupt()
        result = self.k.execute("print('looping', flush=True)\nwhile True: pass",
                                on_output=interrupt_when_looping)
        self.assertEqual((result["status"], result["reply"]["ename"]), ("error", "KeyboardInterrupt"))
        self.assertEqual(self.k.restart()["id"], self.k.id)
        with self.assertRaises(ExecutionFailed):
            self.k.eval_cell("kept")

    def test_sympy_session(self):
        """from sympy import *; x = Symbol('x'); integrate(sin(x), x) gives '-cos(x)'."""
        self.assertEqual(self.k.eval_cell("from sympy import *; x = Symbol('x'); integrate(sin(x), x)"),
                         "-cos(x)")
