"""A kernel WebSocket client's Jupyter requests, each turned into its call of the kernel API.

One small handler per ``msg_type`` (:data:`HANDLERS`). Every reply is
addressed to the client's request (its header as ``parent_header``), so
the client matches it. A call that fails becomes a reply with
``status: "error"`` and the WAMP error's URI as ``ename``. A request the
kernel API has no call for (``debug_request`` …) gets an error reply saying
so, or, for messages that expect none, is dropped with a log line.
"""

from twisted.logger import Logger

from broker.client.errors import KernelError
from broker.gateway import comms
from broker.kernel import uris

_log = Logger()
#: the keys of each shell request the kernel API takes
FIELDS = {
    "execute": ("code", "silent", "store_history", "user_expressions", "allow_stdin",
                "stop_on_error"),
    "complete": ("code", "cursor_pos"),
    "inspect": ("code", "cursor_pos", "detail_level"),
    "is_complete": ("code",),
    "history": ("hist_access_type", "n", "output", "raw", "session", "start", "stop",
                "pattern", "unique"),
    "kernel_info": (),
    "comm_info": ("target_name",),
}


def _call(socket, name, **kwargs):
    return socket.client.call(uris.kernel_procedure(socket.kernel_id, name), timeout=0, **kwargs)


def _fields(name, content):
    return {k: content[k] for k in FIELDS[name] if content.get(k) is not None}


def _error_reply(socket, channel, reply_type, header):
    def failed(failure):
        if not failure.check(KernelError):
            _log.failure("{reply_type} for a kernel WebSocket failed", failure,
                         reply_type=reply_type)
        e = failure.value
        content = {"status": "error", "ename": getattr(e, "uri", None) or type(e).__name__,
                   "evalue": str(e), "traceback": []}
        socket.send_jupyter(channel, reply_type, content, header)
    return failed


def _shell(name):
    """The handler of a ``<name>_request`` on shell (or control): its call, then its reply."""
    def handle(socket, msg):
        header, channel = msg["header"], msg["channel"]
        d = _call(socket, name, **_fields(name, msg["content"]))
        d.addCallback(lambda content: socket.send_jupyter(channel, f"{name}_reply", content, header))
        d.addErrback(_error_reply(socket, channel, f"{name}_reply", header))
    return handle


def _relay(socket, header, answered_later=False):
    """The progress of a call whose outputs answer the client's message *header*: each goes
    to the client addressed to it (the kernel's request id remembered in the trail)."""
    def progress(*args, **output):
        kernel_msg_id = output.get("parent_msg_id")
        if kernel_msg_id is not None and kernel_msg_id not in socket.trail.parents:
            socket.trail.remember(kernel_msg_id, header)
            if answered_later:
                socket.trail.unanswered[kernel_msg_id] = header
        if socket.live:
            socket.send_output(output, header)
    return progress


def execute(socket, msg):
    header, channel = msg["header"], msg["channel"]
    content = _fields("execute", msg["content"])
    content.setdefault("allow_stdin", True)
    progress = _relay(socket, header, answered_later=True)

    def answered(result):
        if socket.live:   # else the reply waits in the trail for the session_id's return
            socket.trail.unanswered.pop(result.get("msg_id"), None)
            socket.send_jupyter(channel, "execute_reply", result["reply"], header)

    d = _call(socket, "execute", on_progress=progress, **content)
    d.addCallbacks(answered, _error_reply(socket, channel, "execute_reply", header))


def answer_missed(socket, kernel_msg_id):
    """Send the ``execute_reply`` of an execution of this session_id that ended while it was away."""
    header = socket.trail.unanswered.get(kernel_msg_id)

    def answered(entry):
        socket.trail.unanswered.pop(kernel_msg_id, None)
        if socket.live:
            socket.send_jupyter("shell", "execute_reply", entry["reply"], header)
    d = _call(socket, "reply", msg_id=kernel_msg_id)
    d.addCallbacks(answered, _error_reply(socket, "shell", "execute_reply", header))


def comm(socket, msg):
    """``comm_open``, ``comm_msg``, ``comm_close`` (widgets): the ``comm`` call with progress.
    Jupyter gives them no reply; what the kernel outputs for one goes back addressed to it.
    Binary buffers come only on the v1 protocol (the legacy one has none)."""
    header = msg["header"]
    buffers = [bytes(b) for b in msg.get("buffers") or () if isinstance(b, (bytes, memoryview))]
    d = _call(socket, "comm", on_progress=_relay(socket, header), msg_type=header["msg_type"],
              content=comms.to_kernel(msg["content"], socket.trail),
              metadata=msg.get("metadata") or None,
              buffers=buffers or None)
    d.addErrback(lambda f: _log.info("{msg_type} on {kernel_id} refused: {why}",
                                     msg_type=header["msg_type"], kernel_id=socket.kernel_id,
                                     why=f.getErrorMessage()))


def input_reply(socket, msg):
    value = msg["content"].get("value")
    d = _call(socket, "input", value=value if isinstance(value, str) else "")
    d.addErrback(lambda f: _log.info("input_reply on {kernel_id} dropped: {why}",
                                     kernel_id=socket.kernel_id, why=f.getErrorMessage()))


def interrupt(socket, msg):
    header, channel = msg["header"], msg["channel"]
    d = _call(socket, "interrupt")
    d.addCallback(lambda _: socket.send_jupyter(channel, "interrupt_reply", {"status": "ok"}, header))
    d.addErrback(_error_reply(socket, channel, "interrupt_reply", header))


def shutdown(socket, msg):
    header, channel = msg["header"], msg["channel"]
    restart = bool(msg["content"].get("restart"))
    d = _call(socket, "restart" if restart else "shutdown")
    d.addCallback(lambda _: socket.send_jupyter(
        channel, "shutdown_reply", {"status": "ok", "restart": restart}, header))
    d.addErrback(_error_reply(socket, channel, "shutdown_reply", header))


HANDLERS = {
    "execute_request": execute,
    "complete_request": _shell("complete"),
    "inspect_request": _shell("inspect"),
    "is_complete_request": _shell("is_complete"),
    "history_request": _shell("history"),
    "kernel_info_request": _shell("kernel_info"),
    "comm_info_request": _shell("comm_info"),
    "comm_open": comm,
    "comm_msg": comm,
    "comm_close": comm,
    "input_reply": input_reply,
    "interrupt_request": interrupt,
    "shutdown_request": shutdown,
}


def handle(socket, msg):
    """Act on one message from the client."""
    msg_type = msg["header"]["msg_type"]
    handler = HANDLERS.get(msg_type)
    if handler is not None:
        return handler(socket, msg)
    if msg_type.endswith("_request"):
        reply = msg_type[:-len("_request")] + "_reply"
        content = {"status": "error", "ename": "NotSupported",
                   "evalue": f"webkernel's gateway does not support {msg_type}", "traceback": []}
        return socket.send_jupyter(msg["channel"], reply, content, msg["header"])
    _log.info("kernel WebSocket message {msg_type} on {kernel_id} is not supported; dropped",
              msg_type=msg_type, kernel_id=socket.kernel_id)
