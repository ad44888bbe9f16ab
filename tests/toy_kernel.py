"""A toy Python kernel for the real :class:`~broker.kernel.host.KernelHost`, with no kernel process.

The client tests run the service's own kernel host, procedures and
conversation; only below the kernel seams is this toy: :class:`ToyLauncher`
(an ``IKernelLauncher``) "launches" a :class:`ToyKernel`, and
:func:`toy_channels_factory` reaches it through :class:`ToyKernelChannels`, the
shipped :class:`~broker.kernel.testing.FakeKernelChannels` answering as a
kernel does, in Jupyter messages. So the kernel API the clients see is the
real one and cannot drift from a stub.

A cell runs in a thread of its own, one cell at a time: ``print`` is stdout
(``file=sys.stderr``: stderr), ``input()`` sends an ``input_request`` (with
``allow_stdin``), a last expression's ``repr`` is the ``execute_result``, an
exception is an ``error``, and SIGINT (``interrupt``) raises
``KeyboardInterrupt`` in the running cell (a trace function checks it
between opcodes).
"""

import ast
import builtins
import itertools
import queue
import sys
import threading
import traceback

from twisted.internet import defer
from zope.interface import implementer

from broker.kernel.errors import KernelGone, NoSuchKernelSpec
from broker.kernel.interfaces import IKernelLauncher
from broker.kernel.testing import FakeKernelChannels

SPECS = {"default": "toy", "kernelspecs": {"toy": {"name": "toy", "spec": {
    "display_name": "Toy Python (test)", "language": "python", "argv": [],
    "env": {}, "metadata": {}, "interrupt_mode": "signal"}, "resources": {}}}}
KERNEL_INFO = {"status": "ok", "protocol_version": "5.3", "implementation": "toy",
               "language_info": {"name": "python"}, "banner": "toy"}
_INTERRUPT = object()
_CELL = "<cell>"
_pids = itertools.count(50000)


class StdinNotImplementedError(RuntimeError):
    """``input()`` in code run without ``allow_stdin`` (ipykernel's name for it)."""


class ToyKernel:
    """A Python namespace answering Jupyter requests; its "process" ends with ``exit``."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.pid = next(_pids)
        self.exited = defer.Deferred()
        self.namespace, self.execution_count = {}, 0
        self.channels = None
        self.cells = defer.DeferredLock()  # shell requests are handled one at a time
        self.interrupted = threading.Event()
        self.answers = queue.SimpleQueue()
        self.waiting_for_input = False

    def received(self, channel, msg):
        """A request the host sent (delivered after ``send`` returned, as over a socket)."""
        if self.exited.called:
            return
        handler = getattr(self, "on_" + msg["msg_type"], None)
        if handler is not None:
            handler(channel, msg)

    def reply(self, channel, request, msg_type, content):
        if not self.exited.called and self.channels is not None and not self.channels.closed:
            self.channels.reply(channel, request, msg_type, content)

    def iopub(self, request, msg_type, content):
        self.reply("iopub", request, msg_type, content)

    # -- requests ------------------------------------------------------------------

    def on_execute_request(self, channel, request):
        self.cells.run(self._execute, request)

    def _execute(self, request):
        content = request["content"]
        done = defer.Deferred()
        self.interrupted.clear()
        self.execution_count += 1
        self.iopub(request, "status", {"execution_state": "busy"})
        self.iopub(request, "execute_input", {"code": content["code"],
                                              "execution_count": self.execution_count})
        cell = _Cell(self, content["code"], content.get("allow_stdin", False),
                     lambda *out: self.reactor.callFromThread(self._out, request, *out))
        threading.Thread(target=cell.run, args=(done,), daemon=True).start()
        return done.addCallback(self._executed, request)

    def _out(self, request, channel, msg_type, content):
        self.reply(channel, request, msg_type, content)

    def _executed(self, reply, request):
        self.reply("shell", request, "execute_reply", reply)
        self.iopub(request, "status", {"execution_state": "idle"})

    def on_kernel_info_request(self, channel, request):
        self.reply(channel, request, "kernel_info_reply", KERNEL_INFO)

    def on_complete_request(self, channel, request):
        code, end = request["content"]["code"], request["content"]["cursor_pos"]
        start = end
        while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
            start -= 1
        names = sorted(set(self.namespace) | set(dir(builtins)))
        matches = [n for n in names if n.startswith(code[start:end]) and not n.startswith("__")]
        self.reply(channel, request, "complete_reply", {
            "status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end,
            "metadata": {}})

    def on_inspect_request(self, channel, request):
        name = request["content"]["code"].strip()
        found = name in self.namespace
        data = {"text/plain": repr(self.namespace[name])} if found else {}
        self.reply(channel, request, "inspect_reply",
                   {"status": "ok", "found": found, "data": data, "metadata": {}})

    def on_is_complete_request(self, channel, request):
        try:
            ast.parse(request["content"]["code"])
            status = "complete"
        except SyntaxError:
            status = "incomplete"
        self.reply(channel, request, "is_complete_reply", {"status": status})

    def on_history_request(self, channel, request):
        self.reply(channel, request, "history_reply", {"status": "ok", "history": []})

    def on_input_reply(self, channel, request):
        if self.waiting_for_input:
            self.waiting_for_input = False
            self.answers.put(request["content"]["value"])

    def on_interrupt_request(self, channel, request):
        self.interrupt()
        self.reply(channel, request, "interrupt_reply", {"status": "ok"})

    def on_shutdown_request(self, channel, request):
        self.reply(channel, request, "shutdown_reply", {"status": "ok", "restart": False})
        self.exit("exit code 0")

    # -- the "process" ---------------------------------------------------------------

    def interrupt(self):
        self.interrupted.set()
        if self.waiting_for_input:
            self.waiting_for_input = False
            self.answers.put(_INTERRUPT)

    def exit(self, status):
        if not self.exited.called:
            self.interrupt()
            self.exited.callback(status)


class _Cell:
    """One cell running in its thread; every output goes to the reactor through *emit*."""

    def __init__(self, kernel, code, allow_stdin, emit):
        self.kernel, self.code, self.allow_stdin, self.emit = kernel, code, allow_stdin, emit
        self.count = kernel.execution_count

    def run(self, done):
        namespace = self.kernel.namespace
        namespace.update(print=self.print, input=self.input)
        sys.settrace(self.trace)
        try:
            tree = ast.parse(self.code, _CELL)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, _CELL, "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), _CELL, "eval"), namespace)
                if value is not None:
                    self.emit("iopub", "execute_result", {
                        "execution_count": self.count, "metadata": {},
                        "data": {"text/plain": repr(value)}})
            reply = {"status": "ok", "execution_count": self.count, "user_expressions": {}}
        except BaseException as e:  # the cell's own exception, KeyboardInterrupt included
            failure = {"ename": type(e).__name__, "evalue": str(e),
                       "traceback": traceback.format_exception(e)}
            self.emit("iopub", "error", failure)
            reply = {"status": "error", "execution_count": self.count, **failure}
        finally:
            sys.settrace(None)
        self.kernel.reactor.callFromThread(done.callback, reply)

    def trace(self, frame, event, arg):
        if frame.f_code.co_filename != _CELL:
            return None
        frame.f_trace_opcodes = True  # `while True: pass` has no line events to check at
        return self.trace_step

    def trace_step(self, frame, event, arg):
        if event == "opcode" and self.kernel.interrupted.is_set():
            self.kernel.interrupted.clear()
            raise KeyboardInterrupt()
        return self.trace_step

    def print(self, *args, sep=" ", end="\n", file=None, flush=False):
        name = "stderr" if file is sys.stderr else "stdout"
        self.emit("iopub", "stream", {"name": name, "text": sep.join(map(str, args)) + end})

    def input(self, prompt=""):
        if not self.allow_stdin:
            raise StdinNotImplementedError(
                "raw_input was called, but this frontend does not support input requests.")
        self.kernel.reactor.callFromThread(self._ask, str(prompt))
        answer = self.kernel.answers.get()
        if answer is _INTERRUPT:
            raise KeyboardInterrupt()
        return answer

    def _ask(self, prompt):
        self.kernel.waiting_for_input = True
        self.emit("stdin", "input_request", {"prompt": prompt, "password": False})


class ToyKernelChannels(FakeKernelChannels):
    """The shipped fake channels, answered by a ToyKernel instead of by a test."""

    def __init__(self, on_message, kernel):
        super().__init__(on_message)
        self.kernel = kernel
        kernel.channels = self

    def send(self, channel, msg_type, content, metadata=None, parent=None, buffers=None):
        msg = super().send(channel, msg_type, content, metadata, parent, buffers)
        self.sent.clear()  # nobody reads them here; keep no history of requests
        self.kernel.reactor.callLater(0, self.kernel.received, channel, msg)
        return msg

    def nudge(self, timeout=30.0, interval=0.5, channel="shell"):
        self._check_open()
        return defer.succeed(KERNEL_INFO)

    def ping(self):
        self._check_open()
        return defer.succeed(None)


def toy_channels_factory(connection_info, on_message, kernel_id):
    """The host's channels factory: channels to the ToyKernel of this launch."""
    return ToyKernelChannels(on_message, connection_info["toy_kernel"])


class ToyLaunch:
    """A "launched" ToyKernel, as the supervisor sees a kernel process."""

    interrupt_mode = "signal"

    def __init__(self, kernel_id, kernel):
        self.kernel_id = kernel_id
        self.kernel = kernel
        self.pid = kernel.pid
        self.connection_info = {"toy_kernel": kernel}
        self.exited = kernel.exited

    def signal(self, name):
        if self.exited.called:
            return False
        if name == "INT":
            self.kernel.interrupt()
        else:
            self.kernel.exit(f"killed by signal SIG{name}")
        return True

    def remove_files(self):
        pass

    def stop_watching(self):
        pass

    def output_tail(self):
        return ""


@implementer(IKernelLauncher)
class ToyLauncher:
    """Launches ToyKernels on *reactor*; nothing to adopt (no toy outlives its service)."""

    def __init__(self, reactor):
        self.reactor = reactor

    def kernelspecs(self):
        return SPECS

    def launch(self, kernel_name, kernel_id, owner=None):
        if kernel_name not in SPECS["kernelspecs"]:
            return defer.fail(NoSuchKernelSpec(f"no kernelspec {kernel_name!r}"))
        return defer.succeed(ToyLaunch(kernel_id, ToyKernel(self.reactor)))

    def adopt(self, kernel_name, kernel_id, pid, poll_interval=1.0):
        return defer.fail(KernelGone(f"kernel {kernel_id}: toy kernels end with their service"))
