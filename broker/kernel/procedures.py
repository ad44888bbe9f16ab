"""The per-kernel procedures ``webkernel.kernel.<id>.*`` (see docs/kernels.md).

Each procedure is a small function of the kernel and the call's details;
:func:`register_all` registers them for one kernel. A kernel-side condition
(a :class:`broker.errors.Condition`) they raise or fail with reaches the
caller as the WAMP error of its URI (through :func:`broker.kernel.arguments.checked`).
"""

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, RegisterOptions
from twisted.internet import defer

from broker import errors
from broker.auth import TEACHING_ROLE
from broker.kernel import arguments, uris
from broker.kernel.errors import KernelUnavailable
from broker.kernel.supervisor import KernelDied, KernelShutDown


class ExecutionFailed(ApplicationError):
    """Code raised in the kernel: ``webkernel.error.execution_failed``.

    Its kwargs are ``ename``, ``evalue``, ``traceback_lines`` (Jupyter's list
    of traceback lines) and ``traceback`` (those lines joined by newlines).
    Autobahn's ``ApplicationError.__str__`` appends a ``traceback`` kwarg to
    the message as a string, so a list there makes ``str(error)`` raise
    TypeError in a stock Autobahn client; a string prints. It also pops that
    kwarg, and Autobahn formats the exception before sending it, so this
    class formats itself without touching its kwargs.
    """

    uri = errors.EXECUTION_FAILED

    def __init__(self, message, ename, evalue, traceback_lines):
        lines = [line for line in traceback_lines if isinstance(line, str)]
        super().__init__(self.uri, message, ename=ename, evalue=evalue,
                         traceback="\n".join(lines), traceback_lines=lines)

    def __str__(self):
        return f"{self.error}: {self.args[0] if self.args else ''}"


_READY_STATES = ("idle", "busy")


def caller_of(details):
    """Who is calling: ``{session, authid, authrole}`` (None if not disclosed)."""
    if details is None or details.caller is None:
        return None
    return {"session": details.caller, "authid": details.caller_authid,
            "authrole": details.caller_authrole}


def delegated_caller(details, on_behalf_of):
    """The caller an output is attributed to: the classroom service may name the teacher it acts for.

    ``on_behalf_of`` (``{authid, authrole}``) is taken only from the
    classroom service's own session (role ``webkernel_teaching``: a teacher's
    broadcast cell); the output's caller then is that person, with ``via``
    naming the service. From anyone else it is refused.
    """
    caller = caller_of(details)
    if on_behalf_of is None:
        return caller
    if caller is None or caller["authrole"] != TEACHING_ROLE:
        raise arguments.refuse("on_behalf_of is for the classroom service only")
    arguments.text_map("on_behalf_of", on_behalf_of)
    return {"session": caller["session"], "authid": on_behalf_of.get("authid"),
            "authrole": on_behalf_of.get("authrole"), "via": TEACHING_ROLE}


_check_text = arguments.text


def _check_ready(kernel):
    state = kernel.supervisor.state
    if state not in _READY_STATES:
        raise KernelUnavailable(f"kernel {kernel.id} is {state}"
                                + (f" ({kernel.supervisor.reason})" if kernel.supervisor.reason else "")
                                + f": wait for it on {uris.KERNELS_EVENTS}")


def _kernel_errors(failure, kernel):
    """Pending requests that end with the kernel say which kernel it was."""
    if failure.check(KernelDied, KernelShutDown):
        raise type(failure.value)(f"kernel {kernel.id}: {failure.getErrorMessage()}")
    return failure


def _request(kernel, channel, msg_type, content, details, on_output=None, interruptible=False,
             caller=None, metadata=None, buffers=None):
    """Send a request; a Deferred of the reply that interrupts the kernel if canceled."""
    _check_ready(kernel)
    caller = caller if caller is not None else caller_of(details)
    inner = kernel.conversation.request(channel, msg_type, content, caller, on_output,
                                        metadata=metadata, buffers=buffers)
    canceller = (lambda _: kernel.supervisor.interrupt()) if interruptible else None
    outer = defer.Deferred(canceller)
    inner.addErrback(_kernel_errors, kernel)
    inner.chainDeferred(outer)
    return outer


def _reply_content(reply):
    return reply["content"]


def execute(kernel, code, silent=False, store_history=True, user_expressions=None,
            allow_stdin=None, stop_on_error=True, on_behalf_of=None, details=None):
    _check_text("code", code)
    caller = delegated_caller(details, on_behalf_of)
    for name, value in (("silent", silent), ("store_history", store_history),
                        ("stop_on_error", stop_on_error)):
        arguments.flag(name, value)
    arguments.flag("allow_stdin", allow_stdin, optional=True)
    arguments.text_map("user_expressions", user_expressions, optional=True)
    progress = details.progress if details is not None else None
    content = {
        "code": code, "silent": silent, "store_history": store_history,
        "user_expressions": user_expressions or {},
        "allow_stdin": bool(progress) if allow_stdin is None else allow_stdin,
        "stop_on_error": stop_on_error,
    }
    on_output = (lambda output: progress(**output)) if progress else None
    d = _request(kernel, "shell", "execute_request", content, details, on_output,
                 interruptible=True, caller=caller)
    return d.addCallback(_execute_result)


def _execute_result(reply_and_outputs):
    reply, outputs = reply_and_outputs
    content = reply["content"]
    return CallResult(status=content.get("status"), execution_count=content.get("execution_count"),
                      reply=content, outputs=outputs.outputs, omitted=outputs.omitted,
                      msg_id=reply["parent_header"].get("msg_id"))


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
        traceback = content.get("traceback")
        raise ExecutionFailed(f"{content.get('ename')}: {content.get('evalue')}",
                              content.get("ename"), content.get("evalue"),
                              traceback if isinstance(traceback, list) else [])
    if content.get("status") == "aborted":
        raise ExecutionFailed("execution aborted", "Aborted", "execution aborted", [])
    for output in outputs.outputs:
        if output["msg_type"] == "execute_result":
            return output["content"].get("data", {}).get("text/plain", "")
    return ""


def _cursor(code, cursor_pos):
    """The cursor position in *code* (its end if None), checked: in characters, within the code."""
    _check_text("code", code)
    arguments.integer("cursor_pos", cursor_pos, 0, len(code), optional=True)
    return len(code) if cursor_pos is None else cursor_pos


def complete(kernel, code, cursor_pos=None, details=None):
    position = _cursor(code, cursor_pos)
    return _request(kernel, "shell", "complete_request", {"code": code, "cursor_pos": position},
                    details).addCallback(_reply_content)


def inspect(kernel, code, cursor_pos=None, detail_level=0, details=None):
    position = _cursor(code, cursor_pos)
    arguments.integer("detail_level", detail_level, 0, 1)
    content = {"code": code, "cursor_pos": position, "detail_level": detail_level}
    return _request(kernel, "shell", "inspect_request", content, details).addCallback(_reply_content)


def is_complete(kernel, code, details=None):
    _check_text("code", code)
    return _request(kernel, "shell", "is_complete_request", {"code": code},
                    details).addCallback(_reply_content)


HISTORY_ACCESS_TYPES = ("tail", "range", "search")


def history(kernel, hist_access_type="tail", n=10, output=False, raw=True, session=None,
            start=None, stop=None, pattern=None, unique=False, details=None):
    arguments.choice("hist_access_type", hist_access_type, HISTORY_ACCESS_TYPES)
    arguments.integer("n", n, 0, arguments.INT32)
    for name, value in (("session", session), ("start", start), ("stop", stop)):
        arguments.integer(name, value, -arguments.INT32, arguments.INT32, optional=True)
    for name, value in (("output", output), ("raw", raw), ("unique", unique)):
        arguments.flag(name, value)
    _check_text("pattern", pattern, optional=True)
    given = {"session": session, "start": start, "stop": stop, "pattern": pattern}
    content = {"hist_access_type": hist_access_type, "n": n, "output": output, "raw": raw,
               "unique": unique, **{k: v for k, v in given.items() if v is not None}}
    return _request(kernel, "shell", "history_request", content, details).addCallback(_reply_content)


def kernel_info(kernel, details=None):
    return _request(kernel, "shell", "kernel_info_request", {}, details).addCallback(_reply_content)


#: the comm messages a client may send a kernel (Jupyter messaging, "Custom messages")
COMM_TYPES = ("comm_open", "comm_msg", "comm_close")
#: the most binary buffers one comm message may carry
MAX_BUFFERS = 64


def comm(kernel, msg_type, content, metadata=None, buffers=None, details=None):
    """Send a comm message (``comm_open``, ``comm_msg`` or ``comm_close``: widgets and other
    comms) on shell. The kernel answers with outputs only (its comm messages on iopub, as
    progress to the caller too); the result, once the kernel is idle after it:
    ``{msg_id, outputs, omitted}``."""
    arguments.choice("msg_type", msg_type, COMM_TYPES)
    arguments.json_object("content", content)
    arguments.text("content.comm_id", content.get("comm_id"))
    if msg_type == "comm_open":
        arguments.text("content.target_name", content.get("target_name"))
    arguments.json_object("metadata", metadata, optional=True)
    arguments.byte_strings("buffers", buffers, MAX_BUFFERS, optional=True)
    progress = details.progress if details is not None else None
    on_output = (lambda output: progress(**output)) if progress else None
    d = _request(kernel, "shell", msg_type, content, details, on_output, metadata=metadata,
                 buffers=buffers)
    return d.addCallback(_comm_result)


def _comm_result(reply_and_outputs):
    reply, outputs = reply_and_outputs
    return CallResult(msg_id=reply["parent_header"].get("msg_id"), outputs=outputs.outputs,
                      omitted=outputs.omitted)


def comm_info(kernel, target_name=None, details=None):
    """The kernel's open comms (of *target_name*): its ``comm_info_reply`` content."""
    arguments.text("target_name", target_name, optional=True)
    content = {} if target_name is None else {"target_name": target_name}
    return _request(kernel, "shell", "comm_info_request", content,
                    details).addCallback(_reply_content)


def input_(kernel, value, details=None):
    _check_text("value", value)
    kernel.conversation.answer_input(value, caller_of(details))


def outputs(kernel, since=0, limit=None, details=None):
    arguments.integer("since", since, -arguments.SAFE_INT, arguments.SAFE_INT)
    arguments.integer("limit", limit, 0, arguments.SAFE_INT, optional=True)
    return CallResult(**kernel.conversation.history.since(since, limit))


def reply(kernel, msg_id, details=None):
    """The recent execute reply to *msg_id* ``{msg_id, status, execution_count, reply, truncated}``."""
    _check_text("msg_id", msg_id)
    d = kernel.conversation.reply_for(msg_id)
    d.addErrback(_kernel_errors, kernel)
    return d.addCallback(lambda entry: CallResult(**entry))


def interrupt(kernel, details=None):
    _check_ready(kernel)
    kernel.supervisor.interrupt()


def restart(kernel, details=None, host=None):
    d = kernel.supervisor.restart()
    return d.addCallback(lambda _: kernel.model())


def shutdown(kernel, details=None, host=None):
    return host.remove_kernel(kernel).addCallback(lambda _: None)


#: what a kernel may be shared for: watching it, or everything its owner may do but share
SHARE_ACCESS = ("watch", "full")
#: the most users one kernel may be shared with
MAX_SHARES = 100


def _user(user):
    arguments.text("user", user)
    if not user or len(user) > 256:
        raise arguments.refuse("user must be a user's name (1 to 256 characters)")


def share(kernel, user, access="watch", details=None, host=None):
    """Share the kernel with *user* (replacing an earlier share); its model."""
    _user(user)
    if access not in SHARE_ACCESS:
        raise arguments.refuse(f"access must be one of {', '.join(SHARE_ACCESS)}, not {access!r}")
    if user not in kernel.shared and len(kernel.shared) >= MAX_SHARES:
        raise arguments.refuse(f"a kernel may be shared with at most {MAX_SHARES} users")
    return host.set_share(kernel, user, access)


def unshare(kernel, user, details=None, host=None):
    """Stop sharing the kernel with *user* (nothing if it was not); its model."""
    _user(user)
    return host.set_share(kernel, user, None)


PROCEDURES = {
    "execute": execute, "eval_cell": eval_cell, "complete": complete, "inspect": inspect,
    "is_complete": is_complete, "history": history, "kernel_info": kernel_info,
    "input": input_, "outputs": outputs, "reply": reply, "interrupt": interrupt,
    "comm": comm, "comm_info": comm_info,
}
LIFECYCLE = {"restart": restart, "shutdown": shutdown, "share": share, "unshare": unshare}


def _bind(function, kernel, name, host=None):
    uri = uris.kernel_procedure(kernel.id, name)
    if host is None:
        return arguments.checked(function, uri, kernel)
    return arguments.checked(function, uri, kernel, host=host)


def register_all(host, kernel):
    """Register every procedure of *kernel* on *host*'s session; a Deferred of the registrations.

    The REGISTERs are all sent at once, not one after another's answer: a kernel
    becomes callable after one round trip to the router, not fifteen (each of
    them a network round trip when the router is Crossbar.io). It fails with the
    first refusal, once every answer is in.
    """
    options = RegisterOptions(details_arg="details")
    pending = [host.register(_bind(function, kernel, name), uris.kernel_procedure(kernel.id, name),
                             options=options) for name, function in PROCEDURES.items()]
    pending += [host.register(_bind(function, kernel, name, host),
                              uris.kernel_procedure(kernel.id, name), options=options)
                for name, function in LIFECYCLE.items()]
    return defer.gatherResults(pending, consumeErrors=True).addErrback(_first_error)


def _first_error(failure):
    failure.trap(defer.FirstError)
    return failure.value.subFailure
