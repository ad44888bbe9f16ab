"""The seed and SymPy sessions through ``/jsonrpc`` with the stock jsonrpclib-pelix client and real ipykernel.

One ``twistd webkernel`` (subprocess, with its token) for the module; each
test uses the token's default kernel or one it starts. Waits are bounded:
HTTP timeouts and the ``wait`` method, no sleeps.
"""

import pytest
from jsonrpclib import ServerProxy
from jsonrpclib.jsonrpc import ProtocolError
from twisted.trial.unittest import SynchronousTestCase

from tests.service import ServicePerClass

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

WAIT = 60


class JsonRpcKernelTests(ServicePerClass, SynchronousTestCase):
    """What the 2010 thread asked for, with ServerProxy and real kernels."""

    kernel_dir_prefix = "webkernel-jsonrpc-"
    service_options = ("--max-kernels", "4")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.url = f"http://127.0.0.1:{cls.service.port}/jsonrpc?token={cls.service.token}"

    def setUp(self):
        self.proxy = ServerProxy(self.url)
        self.kernel_id = self.proxy.start_kernel()["id"]
        self.addCleanup(self.proxy.shutdown, self.kernel_id)

    def eval_cell(self, code):
        return self.proxy.eval_cell(code, self.kernel_id)

    def test_seed_session(self):
        """eval_cell('2+3') is '5'; a name defined in one call is there in the next; errors say what failed."""
        self.assertEqual(self.proxy.eval_cell("2+3"), "5")  # the token's default kernel
        self.assertEqual(self.eval_cell("a = 2**10"), "")
        self.assertEqual(self.eval_cell("a + 1"), "1025")
        with self.assertRaises(ProtocolError) as raised:
            self.eval_cell("1/0")
        self.assertEqual(raised.exception.args[0], (-32000, "ZeroDivisionError: division by zero"))

    def test_stdout_in_order_and_input(self):
        """A background execution collects stdout in order; its input() is answered with input()."""
        handle = self.proxy.execute(
            "for i in range(5): print('line', i)\nname = input('name? ')\nprint('hello', name)", self.kernel_id)
        status = self.proxy.wait(handle, WAIT)
        self.assertEqual(status["input_request"], {"prompt": "name? ", "password": False})
        self.proxy.input(handle, "world")
        self.assertEqual(self.proxy.wait(handle, WAIT)["status"], "ok")
        expected = "".join(f"line {i}\n" for i in range(5)) + "hello world\n"
        self.assertEqual(self.proxy.get_stdout(handle), expected)

    def test_interrupt_and_restart(self):
        """interrupt stops `while True: pass` with KeyboardInterrupt; restart forgets the names."""
        self.eval_cell("kept = 1")
        handle = self.proxy.execute("input('ready? ')\nwhile True: pass", self.kernel_id)
        self.assertIsNotNone(self.proxy.wait(handle, WAIT)["input_request"])
        self.proxy.input(handle, "go")
        self.proxy.interrupt(self.kernel_id)
        status = self.proxy.wait(handle, WAIT)
        self.assertEqual((status["status"], status["error"]["ename"]), ("error", "KeyboardInterrupt"))
        self.assertEqual(self.proxy.restart(self.kernel_id)["id"], self.kernel_id)
        with self.assertRaises(ProtocolError) as raised:
            self.eval_cell("kept")
        self.assertEqual(raised.exception.args[0][1], "NameError: name 'kept' is not defined")

    def test_sympy_session(self):
        """The SymPy session: integrate(sin(x), x) is '-cos(x)'."""
        self.assertEqual(self.eval_cell("from sympy import *; x = Symbol('x'); integrate(sin(x), x)"),
                         "-cos(x)")
