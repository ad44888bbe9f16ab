"""Talking to one running kernel: requests and replies, outputs and who caused them.

A :class:`KernelConversation` sits on a kernel's channels
(:class:`~broker.kernel.interfaces.IKernelChannels`). It sends requests and
fires each one's Deferred with the reply; an ``execute`` finishes only when
both its ``execute_reply`` and its ``status: idle`` have arrived. While it
runs, its outputs are gathered for its final result in a
:class:`~broker.kernel.results.ResultOutputs`: the newest within the result's
byte bound, the seqs of the older ones named, so a long cell holds no more. Every iopub message and ``input_request`` becomes
an *output message* (``{seq, msg_type, content, metadata, parent_msg_id,
caller}``), numbered in the kernel's :class:`~broker.kernel.history.OutputHistory`,
handed to the request that caused it and to ``publish``. Every
``execute_reply`` is also kept in the bounded :class:`~broker.kernel.replies.RecentReplies`
(``reply_for``), for a caller that lost its call.
"""

from collections import OrderedDict

from twisted.internet import defer
from twisted.logger import Logger

from broker import errors
from broker.kernel.history import OutputHistory, approximate_size
from broker.kernel.progress import ProgressBatch
from broker.kernel.replies import NoSuchRequest, RecentReplies
from broker.kernel.results import ResultOutputs

_REMEMBERED_CALLERS = 1000

#: requests whose busy/idle says nothing about the kernel running code: the service's own
#: readiness probes (``kernel_info_request``, sent again every half second until one is
#: answered, so later ones' status arrives after the kernel is ready) and control or
#: bookkeeping requests answered even while code runs (Jupyter Server's
#: ``untracked_message_types``); their status is published, but is not the kernel's state
#: messages a kernel answers with no reply, only with what it outputs until idle (comms)
NO_REPLY = frozenset({"comm_open", "comm_msg", "comm_close"})
UNTRACKED_REQUESTS = frozenset({
    "kernel_info_request", "comm_info_request", "shutdown_request", "interrupt_request",
    "debug_request", "history_request", "usage_request",
})


class NoPendingInput(errors.Condition):
    """``input`` was called but the kernel is not waiting for input."""

    uri = errors.NO_PENDING_INPUT


class Request:
    """A request in flight; an execute's ``outputs`` is its bounded :class:`ResultOutputs`."""

    __slots__ = ("msg_id", "msg_type", "caller", "on_output", "outputs", "reply", "idle",
                 "deferred", "waits_for_idle", "progress")

    def __init__(self, msg_id, msg_type, caller, on_output, waits_for_idle):
        self.msg_id, self.msg_type, self.caller = msg_id, msg_type, caller
        self.on_output = on_output
        self.outputs = ResultOutputs() if waits_for_idle else None
        self.reply = None
        self.idle = False
        self.waits_for_idle = waits_for_idle
        self.deferred = None
        self.progress = None  # its ProgressBatch, when its progress is batched per turn

    def finished(self):
        replied = self.reply is not None or self.msg_type in NO_REPLY
        return replied and (self.idle or not self.waits_for_idle)


class KernelConversation:
    """Requests to, and output from, one kernel."""

    log = Logger()

    def __init__(self, kernel_id, publish, history=None, on_state=None, clock=None):
        """With a *clock*, stream outputs a request's progress gets in one turn are merged
        (:mod:`broker.kernel.progress`); without one, each is given alone at once."""
        self.kernel_id = kernel_id
        self.clock = clock
        self.publish = publish
        self.history = history if history is not None else OutputHistory()
        self.replies = RecentReplies()
        #: told each execution state the kernel reports (its supervisor owns the kernel's state),
        #: but not those of UNTRACKED_REQUESTS
        self.on_state = on_state or (lambda state: None)
        self.channels = None
        self.pending_input = None  # (input_request msg, caller)
        self._requests = {}
        self._callers = OrderedDict()

    # -- requests ---------------------------------------------------------------

    def request(self, channel, msg_type, content, caller=None, on_output=None, metadata=None,
                buffers=None):
        """Send a request; a Deferred fires with the reply (for execute: the reply and its
        ResultOutputs; for a comm message, which has no reply: None and its ResultOutputs,
        once the kernel is idle after it)."""
        if self.channels is None:
            return defer.fail(ConnectionError("the kernel has no channels open"))
        waits = msg_type == "execute_request" or msg_type in NO_REPLY
        sent = self.channels.send(channel, msg_type, content, metadata=metadata, buffers=buffers)
        msg_id = sent["header"]["msg_id"]
        request = Request(msg_id, msg_type, caller, on_output, waits)
        if on_output is not None and self.clock is not None:
            request.progress = ProgressBatch(lambda output: self._progress(request, output),
                                             self.clock)
        request.deferred = defer.Deferred(lambda d: self._requests.pop(msg_id, None))
        self._requests[msg_id] = request
        self._remember_caller(msg_id, caller)
        return request.deferred

    def answer_input(self, value, caller=None):
        """Answer the pending ``input_request`` with *value*."""
        if self.pending_input is None:
            raise NoPendingInput(f"kernel {self.kernel_id} is not waiting for input")
        request, _ = self.pending_input
        self.pending_input = None
        self.channels.send("stdin", "input_reply", {"value": value}, parent=request)

    def fail_all(self, failure):
        """Fail every pending request (the kernel died or was shut down)."""
        requests, self._requests = self._requests, {}
        self.pending_input = None
        for request in requests.values():
            if request.progress is not None:
                request.progress.flush()
            request.deferred.errback(failure)
        self.replies.fail_waiters(failure)

    def reply_for(self, msg_id):
        """A Deferred of the recent execute reply to *msg_id*: at once, or once a pending one comes.

        Fails with :class:`NoSuchRequest` if it is neither kept nor pending.
        """
        known = self.replies.get(msg_id)
        if known is not None:
            return defer.succeed(known)
        request = self._requests.get(msg_id)
        if request is None or request.msg_type != "execute_request":
            return defer.fail(NoSuchRequest(
                f"kernel {self.kernel_id} has no recent execute request {msg_id!r} "
                f"(it keeps the last {self.replies.max_replies} replies)"))
        return self.replies.wait_for(msg_id)

    def _remember_caller(self, msg_id, caller):
        self._callers[msg_id] = caller
        while len(self._callers) > _REMEMBERED_CALLERS:
            self._callers.popitem(last=False)

    # -- messages from the kernel ---------------------------------------------------

    def message_received(self, channel, msg):
        """The one entry point for everything the kernel's channels deliver."""
        if channel == "iopub":
            return self._iopub(msg)
        if channel == "stdin" and msg["msg_type"] == "input_request":
            return self._input_request(msg)
        self._reply(msg)

    def _reply(self, msg):
        parent_id = _parent_id(msg)
        if msg["msg_type"] == "execute_reply" and parent_id is not None:
            self.replies.record(parent_id, msg["content"])
        request = self._requests.get(parent_id)
        if request is None:
            return
        request.reply = msg
        self._maybe_finish(request)

    def _iopub(self, msg):
        if msg["msg_type"] == "iopub_welcome":  # ipykernel 7's hello to a new subscriber
            return
        parent_id = _parent_id(msg)
        request = self._requests.get(parent_id)
        output, size = self._output(msg, parent_id)
        self.publish("iopub." + msg["msg_type"], output)
        if msg["msg_type"] == "status":
            self._status(msg["content"].get("execution_state"), request,
                         (msg.get("parent_header") or {}).get("msg_type"))
        if request is not None:
            self._give(request, output, size)
            self._maybe_finish(request)

    def _status(self, state, request, cause):
        if state in ("busy", "idle") and cause not in UNTRACKED_REQUESTS:
            self.on_state(state)
        if state == "idle" and request is not None:
            request.idle = True

    def _input_request(self, msg):
        parent_id = _parent_id(msg)
        output, size = self._output(msg, parent_id)
        self.pending_input = (msg, output["caller"])
        self.publish("stdin", output)
        request = self._requests.get(parent_id)
        if request is not None:
            self._give(request, output, size)

    def _give(self, request, output, size):
        """Hand an output to the request that caused it (its result and its progress).

        A progress callback that fails (say, the caller's transport is gone)
        is logged and dropped; the request still finishes. *size* is the
        output's :func:`~broker.kernel.history.approximate_size`, measured once.
        """
        if request.outputs is not None:
            request.outputs.add(output, size)
        if request.progress is not None:
            request.progress.give(output)
        else:
            self._progress(request, output)

    def _progress(self, request, output):
        if request.on_output is not None:
            try:
                request.on_output(output)
            except Exception:
                self.log.failure("progress for {msg_id} failed; no more progress for it",
                                 msg_id=request.msg_id)
                request.on_output = None

    def lifecycle_status(self, state, reason=None):
        """Tell the kernel's watchers it is ``dead`` or ``restarting``, as a numbered status output.

        The kernel cannot say so itself; this keeps the iopub topics and the
        history the one place a watcher needs to follow.
        """
        content = {"execution_state": state}
        if reason:
            content["reason"] = reason
        output, _ = self._output({"msg_type": "status", "content": content}, None)
        self.publish("iopub.status", output)

    def _output(self, msg, parent_id):
        """The output message of *msg*, numbered in the history, and its approximate size."""
        output = {
            "seq": None,
            "msg_type": msg["msg_type"],
            "content": msg["content"],
            "metadata": msg.get("metadata") or {},
            "parent_msg_id": parent_id,
            "caller": self._callers.get(parent_id),
        }
        buffers = msg.get("buffers")
        if buffers:
            output["buffers"] = [bytes(b) for b in buffers]
        size = approximate_size(output)
        return self.history.append(output, size), size

    def _maybe_finish(self, request):
        if request.finished() and self._requests.pop(request.msg_id, None) is not None:
            if request.progress is not None:
                request.progress.flush()
            if request.waits_for_idle:
                # a comm message has no reply: a stand-in names what the outputs answer
                reply = request.reply if request.reply is not None else {
                    "parent_header": {"msg_id": request.msg_id}, "content": {}}
                request.deferred.callback((reply, request.outputs))
            else:
                request.deferred.callback(request.reply)


def _parent_id(msg):
    parent = msg.get("parent_header") or {}
    return parent.get("msg_id")
