"""The per-kernel procedures ``webkernel.kernel.<id>.*`` (see docs/kernels.md).

Each procedure is a small function of the kernel and the call's details;
:func:`register_all` registers them for one kernel. Kernel-side conditions
become WAMP errors here, with the URIs of :mod:`broker.kernel.uris`.
"""

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, RegisterOptions
from twisted.internet import defer

from broker.kernel import uris
from broker.kernel.history import approximate_size
from broker.kernel.session import NoPendingInput
from broker.kernel.supervisor import KernelDied, KernelShutDown, KernelStartFailed

INVALID_ARGUMENT = ApplicationError.INVALID_ARGUMENT


class ExecutionFailed(ApplicationError):
    """Code raised in the kernel: ``webkernel.error.execution_failed`` with ename, evalue, traceback.

    Autobahn's ``ApplicationError.__str__`` pops a ``traceback`` kwarg it
    expects to be a string; Jupyter's traceback is a list of lines, so that
    would lose it (Autobahn formats the exception before sending it).
    """

    def __str__(self):
        return f"{self.error}: {self.args[0] if self.args else ''}"
_READY_STATES = ("idle", "busy")


def caller_of(details):
    """Who is calling: ``{session, authid, authrole}`` (None if not disclosed)."""
    if details is None or details.caller is None:
        return None
    return {"session": details.caller, "authid": details.caller_authid,
            "authrole": details.caller_authrole}


def _check_text(name, value):
    if not isinstance(value, str):
        raise ApplicationError(INVALID_ARGUMENT, f"{name} must be a string, not {type(value).__name__}")


def _check_ready(kernel):
    state = kernel.supervisor.state
    if state not in _READY_STATES:
        raise ApplicationError(uris.KERNEL_NOT_READY,
                               f"kernel {kernel.id} is {state}"
                               + (f" ({kernel.supervisor.reason})" if kernel.supervisor.reason else "")
                               + ": wait for it on webkernel.kernels.events")


def _kernel_errors(failure, kernel):
    """Pending requests that end with the kernel become kernel_died errors."""
    if failure.check(KernelDied, KernelShutDown):
        raise ApplicationError(uris.KERNEL_DIED,
                               f"kernel {kernel.id}: {failure.getErrorMessage()}")
    return failure


def _request(kernel, channel, msg_type, content, details, on_output=None, interruptible=False):
    """Send a request; a Deferred of the reply that interrupts the kernel if canceled."""
    _check_ready(kernel)
    inner = kernel.conversation.request(channel, msg_type, content, caller_of(details), on_output)
    canceller = (lambda _: kernel.supervisor.interrupt()) if interruptible else None
    outer = defer.Deferred(canceller)
    inner.addErrback(_kernel_errors, kernel)
    inner.chainDeferred(outer)
    return outer


def _reply_content(reply):
    return reply["content"]


def execute(kernel, code, silent=False, store_history=True, user_expressions=None,
            allow_stdin=None, stop_on_error=True, details=None):
    _check_text("code", code)
    progress = details.progress if details is not None else None
    content = {
        "code": code, "silent": bool(silent), "store_history": bool(store_history),
        "user_expressions": user_expressions or {},
        "allow_stdin": bool(progress) if allow_stdin is None else bool(allow_stdin),
        "stop_on_error": bool(stop_on_error),
    }
    on_output = (lambda output: progress(**output)) if progress else None
    d = _request(kernel, "shell", "execute_request", content, details, on_output, interruptible=True)
    return d.addCallback(_execute_result)


#: the final result of execute carries at most this much output (WAMP messages
#: are bounded: --max-message-size); the rest is named, and in outputs(since=…)
MAX_RESULT_OUTPUT_BYTES = 4 * 1024 * 1024


def _execute_result(reply_and_outputs):
    reply, outputs = reply_and_outputs
    content = reply["content"]
    kept, omitted = _bounded_outputs(outputs, MAX_RESULT_OUTPUT_BYTES)
    return CallResult(status=content.get("status"), execution_count=content.get("execution_count"),
                      reply=content, outputs=kept, omitted=omitted,
                      msg_id=reply["parent_header"].get("msg_id"))


def _bounded_outputs(outputs, budget):
    """The newest outputs within *budget* bytes, and the seq range left out (or None)."""
    kept, used = [], 0
    for output in reversed(outputs):
        used += approximate_size(output)
        if used > budget:
            break
        kept.append(output)
    kept.reverse()
    if len(kept) == len(outputs):
        return kept, None
    left_out = outputs[: len(outputs) - len(kept)]
    return kept, [left_out[0]["seq"], left_out[-1]["seq"]]


def eval_cell(kernel, code, details=None):
    _check_text("code", code)
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    d = _request(kernel, "shell", "execute_request", content, details, interruptible=True)
    return d.addCallback(_eval_result)


def _eval_result(reply_and_outputs):
    reply, outputs = reply_and_outputs
    content = reply["content"]
    if content.get("status") == "error":
        raise ExecutionFailed(
            uris.EXECUTION_FAILED, f"{content.get('ename')}: {content.get('evalue')}",
            ename=content.get("ename"), evalue=content.get("evalue"),
            traceback=content.get("traceback", []))
    if content.get("status") == "aborted":
        raise ExecutionFailed(uris.EXECUTION_FAILED, "execution aborted", ename="Aborted",
                               evalue="execution aborted", traceback=[])
    for output in outputs:
        if output["msg_type"] == "execute_result":
            return output["content"].get("data", {}).get("text/plain", "")
    return ""


def complete(kernel, code, cursor_pos=None, details=None):
    _check_text("code", code)
    position = len(code) if cursor_pos is None else cursor_pos
    return _request(kernel, "shell", "complete_request", {"code": code, "cursor_pos": position},
                    details).addCallback(_reply_content)


def inspect(kernel, code, cursor_pos=None, detail_level=0, details=None):
    _check_text("code", code)
    position = len(code) if cursor_pos is None else cursor_pos
    content = {"code": code, "cursor_pos": position, "detail_level": detail_level}
    return _request(kernel, "shell", "inspect_request", content, details).addCallback(_reply_content)


def is_complete(kernel, code, details=None):
    _check_text("code", code)
    return _request(kernel, "shell", "is_complete_request", {"code": code},
                    details).addCallback(_reply_content)


def history(kernel, hist_access_type="tail", n=10, output=False, raw=True, details=None, **more):
    content = {"hist_access_type": hist_access_type, "n": n, "output": output, "raw": raw, **more}
    return _request(kernel, "shell", "history_request", content, details).addCallback(_reply_content)


def kernel_info(kernel, details=None):
    return _request(kernel, "shell", "kernel_info_request", {}, details).addCallback(_reply_content)


def input_(kernel, value, details=None):
    _check_text("value", value)
    try:
        kernel.conversation.answer_input(value, caller_of(details))
    except NoPendingInput as e:
        raise ApplicationError(uris.NO_PENDING_INPUT, str(e))


def outputs(kernel, since=0, limit=None, details=None):
    if not isinstance(since, int) or (limit is not None and not isinstance(limit, int)):
        raise ApplicationError(INVALID_ARGUMENT, "since and limit must be integers")
    return CallResult(**kernel.conversation.history.since(since, limit))


def interrupt(kernel, details=None):
    _check_ready(kernel)
    kernel.supervisor.interrupt()


def restart(kernel, details=None, host=None):
    d = kernel.supervisor.restart()
    return d.addCallbacks(lambda _: kernel.model(), _restart_failed)


def _restart_failed(failure):
    failure.trap(KernelStartFailed)
    raise ApplicationError(uris.KERNEL_START_FAILED, failure.getErrorMessage())


def shutdown(kernel, details=None, host=None):
    return host.remove_kernel(kernel).addCallback(lambda _: None)


PROCEDURES = {
    "execute": execute, "eval_cell": eval_cell, "complete": complete, "inspect": inspect,
    "is_complete": is_complete, "history": history, "kernel_info": kernel_info,
    "input": input_, "outputs": outputs, "interrupt": interrupt,
}
LIFECYCLE = {"restart": restart, "shutdown": shutdown}


def _bind(function, kernel, host=None):
    if host is None:
        return lambda *args, **kwargs: function(kernel, *args, **kwargs)
    return lambda *args, **kwargs: function(kernel, *args, host=host, **kwargs)


@defer.inlineCallbacks
def register_all(host, kernel):
    """Register every procedure of *kernel* on *host*'s session; return the registrations."""
    options = RegisterOptions(details_arg="details")
    registrations = []
    for name, function in PROCEDURES.items():
        registrations.append((yield host.register(
            _bind(function, kernel), uris.kernel_procedure(kernel.id, name), options=options)))
    for name, function in LIFECYCLE.items():
        registrations.append((yield host.register(
            _bind(function, kernel, host), uris.kernel_procedure(kernel.id, name), options=options)))
    return registrations
