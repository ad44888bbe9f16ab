"""A stub kernel host: the kernel API of ``docs/kernels.md`` over a toy Python kernel.

The client tests run against it: it registers the same procedures, answers
with the same payload shapes and error URIs, and publishes the same topics as
the real kernel host, with no kernel process. Each :class:`ToyKernel` runs a
cell in a thread of its own, one cell at a time: ``print`` is stdout
(``file=sys.stderr``: stderr), ``input()`` asks the caller with an
``input_request``, a last expression's ``repr`` is the ``execute_result``,
an exception is an ``error``, and ``interrupt`` raises ``KeyboardInterrupt``
in the running cell (a trace function checks it between opcodes).
"""

import ast
import builtins
import functools
import queue
import sys
import threading
import traceback
import uuid
from collections import OrderedDict
from datetime import datetime, timezone

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, PublishOptions, RegisterOptions
from twisted.internet import defer

from broker import errors
from broker.kernel import uris
from broker.kernel.procedures import caller_of

SPECS = {"default": "toy", "kernelspecs": {"toy": {"name": "toy", "spec": {
    "display_name": "Toy Python (stub)", "language": "python", "argv": []}}}}
_INTERRUPT = object()
_CELL = "<cell>"
_NO_ACK = PublishOptions(acknowledge=False)
_KEPT_REPLIES = 256


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KeepsTraceback(ApplicationError):
    """An ApplicationError whose ``traceback`` keyword reaches the caller.

    Autobahn's ``ApplicationError.__str__`` pops a ``traceback`` keyword
    argument (and raises on a list), and a callee formats the error with
    ``str()`` before sending it, so a plain ApplicationError arrives without it.
    """

    def __str__(self):
        return self.error_message()


class StdinNotImplementedError(RuntimeError):
    """``input()`` in code run without ``allow_stdin`` (ipykernel's name for it)."""


class ToyKernel:
    """A Python namespace whose cells run in a thread, with Jupyter-shaped outputs."""

    def __init__(self, kernel_id, owner, reactor, publish):
        self.id, self.owner, self.reactor, self.publish = kernel_id, owner, reactor, publish
        self.created = self.last_activity = _now()
        self.namespace, self.execution_count, self.seq = {}, 0, 0
        self.history, self.registrations = [], []
        self.replies = OrderedDict()  # msg_id -> reply(msg_id) entry, the newest _KEPT_REPLIES
        self.state = "idle"
        self.lock = defer.DeferredLock()
        self.interrupted = threading.Event()
        self.answers = queue.SimpleQueue()
        self.waiting_for_input = False

    def model(self):
        return {"id": self.id, "name": "toy", "owner": self.owner, "execution_state": self.state,
                "last_activity": self.last_activity, "created": self.created, "reason": None}

    def emit(self, msg_type, content, msg_id, caller, on_output):
        """Number an output message, hand it to its request and publish it (reactor thread)."""
        self.seq += 1
        output = {"seq": self.seq, "msg_type": msg_type, "content": content, "metadata": {},
                  "parent_msg_id": msg_id, "caller": caller}
        self.history = self.history[-999:] + [output]
        on_output(output)
        sub = "stdin" if msg_type == "input_request" else f"iopub.{msg_type}"
        self.publish(uris.kernel_topic(self.id, sub), output)

    def execute(self, code, allow_stdin, caller, on_output):
        """A Deferred of ``(reply_content, outputs)``; cells run one at a time."""
        return self.lock.run(self._execute, code, allow_stdin, caller, on_output)

    def _execute(self, code, allow_stdin, caller, on_output):
        msg_id, outputs, done = uuid.uuid4().hex, [], defer.Deferred()

        def out(msg_type, content):
            self.emit(msg_type, content, msg_id, caller,
                      lambda o: (outputs.append(o), on_output and on_output(o)))
        self.interrupted.clear()
        self.execution_count += 1
        self.state = "busy"
        out("status", {"execution_state": "busy"})
        out("execute_input", {"code": code, "execution_count": self.execution_count})
        cell = _Cell(self, code, allow_stdin, lambda *a: self.reactor.callFromThread(out, *a))
        threading.Thread(target=cell.run, args=(done,), daemon=True).start()

        def finished(reply):
            self.remember_reply(msg_id, reply)
            self.state, self.last_activity = "idle", _now()
            out("status", {"execution_state": "idle"})
            return reply, outputs
        return done.addCallback(finished)

    def remember_reply(self, msg_id, reply):
        self.replies[msg_id] = {"msg_id": msg_id, "status": reply["status"],
                                "execution_count": reply["execution_count"], "reply": reply,
                                "truncated": False}
        while len(self.replies) > _KEPT_REPLIES:
            self.replies.popitem(last=False)

    def ask(self, emit, prompt):
        self.waiting_for_input = True
        emit("input_request", {"prompt": prompt, "password": False})

    def answer(self, value):
        if not self.waiting_for_input:
            raise ApplicationError(errors.NO_PENDING_INPUT, f"kernel {self.id} is not waiting for input")
        self.waiting_for_input = False
        self.answers.put(value)

    def interrupt(self):
        self.interrupted.set()
        if self.waiting_for_input:
            self.waiting_for_input = False
            self.answers.put(_INTERRUPT)


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
                    self.emit("execute_result", {"execution_count": self.count, "metadata": {},
                                                 "data": {"text/plain": repr(value)}})
            reply = {"status": "ok", "execution_count": self.count, "user_expressions": {}}
        except BaseException as e:  # the cell's own exception, KeyboardInterrupt included
            failure = {"ename": type(e).__name__, "evalue": str(e),
                       "traceback": traceback.format_exception(e)}
            self.emit("error", failure)
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
        self.emit("stream", {"name": name, "text": sep.join(map(str, args)) + end})

    def input(self, prompt=""):
        if not self.allow_stdin:
            raise StdinNotImplementedError("raw_input was called, but this frontend does not support input requests.")
        self.kernel.reactor.callFromThread(self.kernel.ask, self.emit, str(prompt))
        answer = self.kernel.answers.get()
        if answer is _INTERRUPT:
            raise KeyboardInterrupt()
        return answer


def _check_text(name, value):
    if not isinstance(value, str):
        raise ApplicationError(errors.INVALID_ARGUMENT, f"{name} must be a string")


def _interruptible(d, kernel):
    """A Deferred of *d*'s result whose cancel (a CANCEL or call timeout) interrupts the kernel."""
    outer = defer.Deferred(lambda _: kernel.interrupt())
    d.chainDeferred(outer)
    return outer


class StubKernelHost(ApplicationSession):
    """Registers the kernel API for toy kernels; ``ready`` fires once it is registered."""

    def __init__(self, config, reactor):
        super().__init__(config)
        self.reactor = reactor
        self.kernels = {}
        self.ready = defer.Deferred()

    @defer.inlineCallbacks
    def onJoin(self, details):
        with_details = RegisterOptions(details_arg="details")
        yield self.register(lambda: SPECS, uris.KERNELSPECS)
        yield self.register(self.start_kernel, uris.KERNELS_START, options=with_details)
        yield self.register(lambda: [k.model() for k in self.kernels.values()], uris.KERNELS_LIST)
        yield self.register(self.unknown_kernel, uris.KERNEL_PREFIX,
                            options=RegisterOptions(match="prefix", details_arg="details"))
        self.ready.callback(self)

    def unknown_kernel(self, *args, details=None, **kwargs):
        raise ApplicationError(errors.NO_SUCH_KERNEL,
                               f"no kernel {uris.kernel_id_of(details.procedure)!r} here")

    def publish_output(self, topic, output):
        if self.is_attached():
            self.publish(topic, options=_NO_ACK, **output)

    @defer.inlineCallbacks
    def start_kernel(self, kernel_name=None, wait=True, details=None):
        if (kernel_name or "toy") not in SPECS["kernelspecs"]:
            raise ApplicationError(errors.NO_SUCH_KERNELSPEC,
                                   f"no kernelspec {kernel_name!r}; installed: ['toy']")
        kernel = ToyKernel(uuid.uuid4().hex, getattr(details, "caller_authid", None),
                           self.reactor, self.publish_output)
        self.kernels[kernel.id] = kernel
        options = RegisterOptions(details_arg="details")
        for name in ("execute", "eval_cell", "complete", "inspect", "kernel_info", "input",
                     "outputs", "reply", "interrupt", "restart", "shutdown"):
            kernel.registrations.append((yield self.register(
                functools.partial(getattr(self, "do_" + name), kernel),
                uris.kernel_procedure(kernel.id, name), options=options)))
        return kernel.model()

    # -- the per-kernel procedures ------------------------------------------------------------

    def do_execute(self, kernel, code, silent=False, store_history=True, user_expressions=None,
                   allow_stdin=None, stop_on_error=True, details=None):
        _check_text("code", code)
        progress = details.progress if details is not None else None
        stdin = bool(progress) if allow_stdin is None else bool(allow_stdin)
        on_output = (lambda output: progress(**output)) if progress else None
        d = kernel.execute(code, stdin, caller_of(details), on_output)
        d.addCallback(lambda r: CallResult(status=r[0]["status"], execution_count=r[0]["execution_count"],
                                           reply=r[0], outputs=r[1], omitted=None,
                                           msg_id=r[1][0]["parent_msg_id"]))
        return _interruptible(d, kernel)

    def do_eval_cell(self, kernel, code, details=None):
        _check_text("code", code)
        return _interruptible(kernel.execute(code, False, caller_of(details), None).addCallback(_evaluated),
                              kernel)

    def do_complete(self, kernel, code, cursor_pos=None, details=None):
        _check_text("code", code)
        end = len(code) if cursor_pos is None else cursor_pos
        start = end
        while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
            start -= 1
        names = sorted(set(kernel.namespace) | set(dir(builtins)))
        matches = [n for n in names if n.startswith(code[start:end]) and not n.startswith("__")]
        return {"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end, "metadata": {}}

    def do_inspect(self, kernel, code, cursor_pos=None, detail_level=0, details=None):
        found = code.strip() in kernel.namespace
        data = {"text/plain": repr(kernel.namespace[code.strip()])} if found else {}
        return {"status": "ok", "found": found, "data": data, "metadata": {}}

    def do_kernel_info(self, kernel, details=None):
        return {"status": "ok", "implementation": "toy", "language_info": {"name": "python"}}

    def do_input(self, kernel, value, details=None):
        _check_text("value", value)
        kernel.answer(value)

    def do_outputs(self, kernel, since=0, limit=None, details=None):
        kept = [o for o in kernel.history if o["seq"] > since][:limit]
        first = kernel.history[0]["seq"] if kernel.history else kernel.seq + 1
        return CallResult(first_seq=first, last_seq=kernel.seq, outputs=kept, complete=first <= since + 1)

    def do_reply(self, kernel, msg_id, details=None):
        _check_text("msg_id", msg_id)
        if msg_id not in kernel.replies:
            raise ApplicationError(errors.NO_SUCH_REQUEST,
                                   f"kernel {kernel.id} has no recent execute request {msg_id!r}")
        return CallResult(**kernel.replies[msg_id])

    def do_interrupt(self, kernel, details=None):
        kernel.interrupt()

    def do_restart(self, kernel, details=None):
        kernel.interrupt()

        def reset():
            kernel.namespace.clear()
            kernel.execution_count = 0
            return kernel.model()
        return kernel.lock.run(reset)

    @defer.inlineCallbacks
    def do_shutdown(self, kernel, details=None):
        kernel.interrupt()
        self.kernels.pop(kernel.id, None)
        for registration in kernel.registrations:
            yield registration.unregister()


def _evaluated(reply_and_outputs):
    reply, outputs = reply_and_outputs
    if reply["status"] != "ok":
        raise KeepsTraceback(errors.EXECUTION_FAILED, f"{reply['ename']}: {reply['evalue']}",
                               ename=reply["ename"], evalue=reply["evalue"],
                               traceback=reply["traceback"])
    for output in outputs:
        if output["msg_type"] == "execute_result":
            return output["content"]["data"]["text/plain"]
    return ""
