"""The JSON-RPC methods, for one principal: kernels reached through the router.

A :class:`Workspace` holds one principal's in-process WAMP session (as an
:class:`~broker.client.asynchronous.AsyncClient`), its default kernel
(started on first use) and its background executions (:class:`Execution`,
named by a handle). It never touches a kernel object: every request is a
call of a ``webkernel.*`` procedure, authorized like any other client's.

Memory is bounded: a workspace keeps its newest ``max_executions``
executions (older handles are forgotten, and say so), and each execution
keeps at most ``max_output`` characters per stream, marking what it dropped.
"""

import re
import secrets
from collections import OrderedDict

from twisted.internet import defer

from broker.client import errors as client_errors
from broker.client.asynchronous import AsyncKernel
from broker.jsonrpc.protocol import INVALID_PARAMS, InvalidParams, JsonRpcError

DEFAULT_MAX_EXECUTIONS = 100
DEFAULT_MAX_OUTPUT = 1024 * 1024  # characters per stream per execution
MAX_WAIT = 600  # seconds a wait() may last
#: error codes of kernel conditions (data.uri names the WAMP error)
EXECUTION_FAILED = -32000
NOT_AUTHORIZED = -32001
NO_SUCH_KERNEL = -32002
NO_SUCH_HANDLE = -32003
KERNEL_DIED = -32004
KERNEL_UNAVAILABLE = -32005  # not ready, start failed, kernel limit, no such kernelspec
TIMEOUT = -32006
NO_PENDING_INPUT = -32007
OTHER_KERNEL_ERROR = -32099
_CODES = {
    client_errors.ExecutionFailed: EXECUTION_FAILED,
    client_errors.NotAuthorized: NOT_AUTHORIZED,
    client_errors.NoSuchKernel: NO_SUCH_KERNEL,
    client_errors.KernelDied: KERNEL_DIED,
    client_errors.KernelNotReady: KERNEL_UNAVAILABLE,
    client_errors.KernelStartFailed: KERNEL_UNAVAILABLE,
    client_errors.KernelLimit: KERNEL_UNAVAILABLE,
    client_errors.NoSuchKernelSpec: KERNEL_UNAVAILABLE,
    client_errors.Timeout: TIMEOUT,
    client_errors.NoPendingInput: NO_PENDING_INPUT,
    client_errors.InvalidArgument: INVALID_PARAMS,
}
_KERNEL_ID = re.compile(r"^[0-9a-z_]+$")


def as_jsonrpc_error(failure):
    """Errback: a client error becomes a JSON-RPC error carrying its URI (and ename, evalue, traceback)."""
    failure.trap(client_errors.KernelError)
    e = failure.value
    data = {"uri": e.uri}
    if isinstance(e, client_errors.ExecutionFailed):
        data.update(ename=e.ename, evalue=e.evalue, traceback=e.traceback)
    raise JsonRpcError(_CODES.get(type(e), OTHER_KERNEL_ERROR), e.message, data)


def _text(name, value, optional=False):
    if not (isinstance(value, str) or (optional and value is None)):
        raise InvalidParams(f"{name} must be a string, not {type(value).__name__}")


def _kernel_id(value):
    if value is not None and not (isinstance(value, str) and _KERNEL_ID.match(value)):
        raise InvalidParams(f"kernel_id must be a kernel id (32 hex digits), not {value!r}")


class SharedResult:
    """One operation's result for many waiters, each given a Deferred of its own.

    A waiter that gives up (cancels) does not cancel the operation.
    """

    _PENDING = object()

    def __init__(self, d):
        self._result = self._PENDING
        self._waiters = []
        d.addBoth(self._fire)

    def wait(self):
        waiter = defer.Deferred()
        if self._result is self._PENDING:
            self._waiters.append(waiter)
        else:
            waiter.callback(self._result)  # a Failure takes the errback path
        return waiter

    def _fire(self, result):
        self._result = result
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(result)
        return None


class Execution:
    """One background ``execute``: its outputs by stream, its end."""

    def __init__(self, handle, kernel_id, max_output):
        self.handle = handle
        self.kernel_id = kernel_id
        self.max_output = max_output
        self.streams = {"stdout": [], "stderr": [], "output": []}
        self.sizes = dict.fromkeys(self.streams, 0)
        self.dropped = dict.fromkeys(self.streams, 0)
        self.status = "running"
        self.execution_count = None
        self.error = None
        self.input_request = None
        self._answer = None
        self._waiters = []

    def add(self, output):
        """Keep what an output message carries for ``get_stdout``/``get_stderr``/``get_output``."""
        content = output.get("content") or {}
        kind = output.get("msg_type")
        if kind == "stream" and content.get("name") in ("stdout", "stderr"):
            self._keep(content["name"], content.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            text = (content.get("data") or {}).get("text/plain")
            if text is not None:
                self._keep("output", text if not self.streams["output"] else "\n" + text)
        elif kind == "error":
            self.error = {k: content.get(k) for k in ("ename", "evalue", "traceback")}

    def _keep(self, stream, text):
        room = self.max_output - self.sizes[stream]
        kept = text[:max(room, 0)]
        if kept:
            self.streams[stream].append(kept)
            self.sizes[stream] += len(kept)
        self.dropped[stream] += len(text) - len(kept)

    def text(self, stream):
        text = "".join(self.streams[stream])
        if self.dropped[stream]:
            text += (f"\n[webkernel: {self.dropped[stream]} more characters dropped; "
                     f"an execution keeps {self.max_output} per stream]\n")
        return text

    def finished(self, result):
        self.status = result.get("status") or "ok"
        self.execution_count = result.get("execution_count")
        self._wake()

    def failed(self, failure):
        self.status = "failed"
        e = failure.value
        self.error = {"ename": type(e).__name__, "evalue": str(e),
                      "uri": getattr(e, "uri", None), "traceback": []}
        self._wake()

    def ask(self, prompt, password):
        """The code called ``input()``: a Deferred of the answer given with :meth:`answer`."""
        self.input_request = {"prompt": prompt, "password": password}
        self._answer = defer.Deferred()
        self._wake()
        return self._answer

    def answer(self, value):
        if self._answer is None:
            raise JsonRpcError(NO_PENDING_INPUT, f"execution {self.handle} is not waiting for input",
                               {"uri": client_errors.NoPendingInput.uri})
        answer, self._answer, self.input_request = self._answer, None, None
        answer.callback(value)

    def wait(self, timeout, clock):
        """A Deferred of :meth:`describe` once done or asking for input, or after *timeout* seconds."""
        if self.status != "running" or self.input_request is not None:
            return defer.succeed(self.describe())
        waiter = defer.Deferred(self._waiters.remove)
        self._waiters.append(waiter)
        return waiter.addTimeout(timeout, clock, onTimeoutCancel=lambda _r, _t: self.describe())

    def _wake(self):
        if self.status != "running":
            self.input_request = self._answer = None  # the code no longer waits
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self.describe())

    def describe(self):
        return {"handle": self.handle, "kernel_id": self.kernel_id, "status": self.status,
                "done": self.status != "running", "execution_count": self.execution_count,
                "error": self.error, "input_request": self.input_request}


class Workspace:
    """One principal's kernels and executions, over its own WAMP session."""

    def __init__(self, client, max_executions=DEFAULT_MAX_EXECUTIONS,
                 max_output=DEFAULT_MAX_OUTPUT):
        self.client = client
        self.max_executions = max_executions
        self.max_output = max_output
        self.executions = OrderedDict()
        self._default = None  # SharedResult of the default kernel's AsyncKernel

    def methods(self):
        """The JSON-RPC method table."""
        return {name: getattr(self, name) for name in (
            "eval_cell", "execute", "get_stdout", "get_stderr", "get_output", "status", "wait", "input",
            "complete", "interrupt", "restart", "start_kernel", "kernels", "shutdown")}

    # -- kernels ------------------------------------------------------------------------

    def _kernel(self, kernel_id):
        if kernel_id is not None:
            return defer.succeed(AsyncKernel(self.client, {"id": kernel_id}))
        if self._default is None:
            self._default = SharedResult(self.client.start_kernel())
            self._default.wait().addErrback(self._forget_default)
        return self._default.wait()

    def _forget_default(self, failure=None):
        self._default = None

    @defer.inlineCallbacks
    def _on_kernel(self, kernel_id, action):
        """``action(kernel)`` on the kernel; the default one is replaced once if it is gone."""
        _kernel_id(kernel_id)
        for attempt in (1, 2):
            try:
                kernel = yield self._kernel(kernel_id).addErrback(as_jsonrpc_error)
                return (yield action(kernel).addErrback(as_jsonrpc_error))
            except JsonRpcError as e:
                if kernel_id is None and e.code in (NO_SUCH_KERNEL, KERNEL_DIED):
                    self._forget_default()
                    if e.code == NO_SUCH_KERNEL and attempt == 1:
                        continue  # the code never ran: run it on a fresh default kernel
                raise

    def eval_cell(self, code, kernel_id=None):
        """The text/plain of *code*'s result, or error -32000 with ename, evalue, traceback."""
        _text("code", code)
        return self._on_kernel(kernel_id, lambda k: k.eval_cell(code, timeout=0))

    def complete(self, code, cursor_pos=None, kernel_id=None):
        _text("code", code)
        if cursor_pos is not None and not isinstance(cursor_pos, int):
            raise InvalidParams("cursor_pos must be an integer")
        return self._on_kernel(kernel_id, lambda k: k.complete(code, cursor_pos))

    def interrupt(self, kernel_id=None):
        return self._on_kernel(kernel_id, lambda k: k.interrupt())

    def restart(self, kernel_id=None):
        return self._on_kernel(kernel_id, lambda k: k.restart())

    def shutdown(self, kernel_id=None):
        if kernel_id is None:
            self._default, default = None, self._default
            if default is None:
                return None
            return default.wait().addCallback(lambda k: k.shutdown()).addErrback(as_jsonrpc_error)
        return self._on_kernel(kernel_id, lambda k: k.shutdown())

    def start_kernel(self, kernel_name=None):
        """Start another kernel; its model (``id`` is the kernel_id for the other methods)."""
        _text("kernel_name", kernel_name, optional=True)
        d = self.client.start_kernel(kernel_name).addCallback(lambda k: k.model)
        return d.addErrback(as_jsonrpc_error)

    def kernels(self):
        return self.client.kernels().addErrback(as_jsonrpc_error)

    # -- background executions -------------------------------------------------------

    def execute(self, code, kernel_id=None):
        """Start *code*; a handle for get_stdout/get_stderr/get_output/status."""
        _text("code", code)
        _kernel_id(kernel_id)
        return self._kernel(kernel_id).addCallbacks(
            lambda kernel: self._start(kernel, code, kernel_id is None), as_jsonrpc_error)

    def _start(self, kernel, code, on_default):
        execution = Execution(secrets.token_hex(16), kernel.id, self.max_output)
        self.executions[execution.handle] = execution
        while len(self.executions) > self.max_executions:
            self.executions.popitem(last=False)
        d = self._run(execution, kernel, code)
        if on_default:
            d.addErrback(self._rerun_on_new_default, execution, code)
        d.addCallbacks(execution.finished, execution.failed)
        return execution.handle

    def _run(self, execution, kernel, code):
        execution.kernel_id = kernel.id
        return kernel.execute(code, on_output=execution.add, on_input=execution.ask, timeout=0)

    def _rerun_on_new_default(self, failure, execution, code):
        """The default kernel is gone: forget it; if the code never ran there, run it on a new one."""
        if failure.check(client_errors.NoSuchKernel, client_errors.KernelDied):
            self._forget_default()
        if not failure.check(client_errors.NoSuchKernel):
            return failure
        return self._kernel(None).addCallback(lambda kernel: self._run(execution, kernel, code))

    def _execution(self, handle):
        _text("handle", handle)
        execution = self.executions.get(handle)
        if execution is None:
            raise JsonRpcError(NO_SUCH_HANDLE, f"no execution {handle!r}: unknown, or dropped "
                               f"(the newest {self.max_executions} are kept)")
        return execution

    def get_stdout(self, handle):
        return self._execution(handle).text("stdout")

    def get_stderr(self, handle):
        return self._execution(handle).text("stderr")

    def get_output(self, handle):
        """The text/plain of the execution's execute_result and display_data, one per line."""
        return self._execution(handle).text("output")

    def input(self, handle, value):
        """Answer the ``input()`` the execution is waiting in (see ``input_request`` in its status)."""
        _text("value", value)
        self._execution(handle).answer(value)

    def status(self, handle):
        """``{handle, kernel_id, status, done, execution_count, error, input_request}``."""
        return self._execution(handle).describe()

    def wait(self, handle, timeout=30):
        """:meth:`status` once the execution is done, or after *timeout* seconds (at most 600)."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise InvalidParams("timeout must be a number of seconds")
        return self._execution(handle).wait(min(timeout, MAX_WAIT), self.client.reactor)
