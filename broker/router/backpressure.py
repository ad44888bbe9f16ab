"""What a session's connection does with output its peer is not reading fast enough.

While the socket accepts data, messages go straight through. When the socket
says "stop" (Twisted pauses its producer), messages wait here, in order, and
the amount waiting is bounded in three steps:

1. above ``coalesce_above`` bytes, kernel output waiting for this peer is
   coalesced: consecutive ``stream`` text of the same subscription, stream
   name and parent is merged into one output (it carries ``coalesced:
   [first_seq, last_seq]``), and an ``update_display_data`` waiting behind a
   newer one for the same ``display_id`` is dropped (the newer one lists it in
   ``superseded``);
2. above ``gap_above`` bytes, waiting kernel output is replaced by one *gap*
   output per subscription, ``{msg_type: "gap", from_seq, to_seq}``: the peer
   fetches the missing outputs with ``outputs(since=from_seq - 1)`` while the
   kernel's history still holds them;
3. if what remains (RPC results, other events) still exceeds ``close_above``
   bytes, the session is closed with a logged reason.

Kernel output is an EVENT published by the kernel host (publisher role
``webkernel_host``) whose keyword arguments are an output message
(``seq``, ``msg_type``, ``content``, …). Nothing else is ever merged or dropped.

A message the peer cannot receive at all (larger than its limit, or holding a
value its serializer cannot encode, which another peer's serializer could
decode) is refused here, one peer at a time: an answer to a call becomes an
ERROR for that call, an INVOCATION raises so the dealer fails the call, and
anything else is dropped for this peer and logged.
"""

from collections import deque

from autobahn.wamp import message

from twisted.logger import Logger

from broker import errors
from broker.auth import KERNEL_HOST_ROLE

_log = Logger()

DEFAULT_COALESCE_ABOVE = 1024 * 1024
DEFAULT_GAP_ABOVE = 8 * 1024 * 1024
#: a merged stream output grows to this many characters, then a new one starts
#: (each merge re-encodes the merged output, so this bounds that work)
MERGED_TEXT_LIMIT = 64 * 1024


class Waiting:
    """One message waiting to be written, with its bytes."""

    __slots__ = ("msg", "payload", "kernel_output")

    def __init__(self, msg, payload, kernel_output):
        self.msg, self.payload, self.kernel_output = msg, payload, kernel_output


def kernel_output(msg):
    """The output message an EVENT carries, if it is kernel output; else None."""
    if type(msg) is not message.Event or msg.publisher_authrole != KERNEL_HOST_ROLE:
        return None
    kwargs = msg.kwargs
    if not kwargs or "seq" not in kwargs or "msg_type" not in kwargs:
        return None
    return kwargs


class OutboundQueue:
    """The bounded, ordered backlog of one connection."""

    def __init__(self, encode, write, close, coalesce_above=DEFAULT_COALESCE_ABOVE,
                 gap_above=DEFAULT_GAP_ABOVE, close_above=16 * 1024 * 1024,
                 max_message=None):
        self.encode, self.write, self.close = encode, write, close
        self.max_message = max_message
        self.coalesce_above = coalesce_above
        self.gap_above = gap_above
        self.close_above = close_above
        self.paused = False
        self.waiting = deque()
        self.bytes = 0
        self.closed = False

    # -- the transport's producer interface -------------------------------------

    def attach(self, transport):
        """Become the transport's producer (replacing HTTP's, after an upgrade)."""
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        while self.waiting and not self.paused and not self.closed:
            item = self.waiting.popleft()
            self.bytes -= len(item.payload)
            self.write(item.payload)

    def stopProducing(self):
        self.closed = True
        self.waiting.clear()
        self.bytes = 0

    # -- sending ----------------------------------------------------------------

    def send(self, msg):
        """Write or queue *msg*.

        Raises :class:`~broker.errors.InvalidPayload` or
        :class:`~broker.errors.PayloadSizeExceeded` for an INVOCATION the
        peer cannot receive, so the dealer can answer its caller.
        """
        if self.closed:
            return
        payload, refusal = self._encoded(msg)
        if refusal is not None:
            msg, payload = self._undeliverable(msg, payload, refusal)
            if msg is None:
                return
        if not self.paused and not self.waiting:
            return self.write(payload)
        output = kernel_output(msg)
        if output is not None and self.bytes > self.coalesce_above and self._merged(msg, output):
            return
        self._append(Waiting(msg, payload, output))
        if self.bytes > self.gap_above:
            self._replace_output_with_gaps()
        if self.bytes > self.close_above:
            self.closed = True
            self.waiting.clear()
            queued, self.bytes = self.bytes, 0
            self.close(queued)

    def _encoded(self, msg):
        """``(payload, None)``, or ``(payload or None, refusal)`` if the peer cannot receive it."""
        name = type(msg).__name__.upper()
        try:
            payload = self.encode(msg)
        except Exception as e:  # a value this peer's serializer cannot represent
            return None, errors.InvalidPayload(
                f"the {name} carries a value the receiving peer's serializer cannot represent: {e}")
        if self.max_message is not None and len(payload) > self.max_message:
            return payload, errors.PayloadSizeExceeded(
                f"a {len(payload)}-byte {name} exceeds the peer's message size limit of "
                f"{self.max_message} bytes")
        return payload, None

    def _undeliverable(self, msg, payload, refusal):
        """What to send instead of a message the peer cannot receive (``None``: nothing).

        The answer to a call becomes an ERROR for that call; an INVOCATION
        raises *refusal* (the dealer answers the caller); a WELCOME too large
        goes on to the transport, which closes a connection that cannot carry
        it (there is no session without it); anything else is dropped, logged.
        """
        _log.warn("{reason}", reason=refusal.message)
        kind = type(msg)
        if kind is message.Result or (kind is message.Error
                                      and msg.request_type == message.Call.MESSAGE_TYPE):
            reason = refusal.message if kind is message.Result else (
                f"{refusal.message} (the callee answered {msg.error})")
            error = message.Error(message.Call.MESSAGE_TYPE, msg.request, refusal.uri,
                                  args=[reason])
            return error, self.encode(error)
        if kind is message.Invocation:
            raise refusal
        if kind is message.Welcome and payload is not None:
            return msg, payload
        return None, None

    def _append(self, item):
        self.waiting.append(item)
        self.bytes += len(item.payload)

    def _remove(self, item):
        self.waiting.remove(item)
        self.bytes -= len(item.payload)

    # -- step 1: coalescing ---------------------------------------------------------

    def _merged(self, msg, output):
        kind = output["msg_type"]
        if kind == "stream":
            return self._merge_stream(msg, output)
        if kind == "update_display_data":
            return self._drop_superseded(msg, output)
        return False

    def _merge_stream(self, msg, output):
        last = self.waiting[-1] if self.waiting else None
        if last is None or last.kernel_output is None or last.msg.subscription != msg.subscription:
            return False
        before = last.kernel_output
        if before["msg_type"] != "stream" or before.get("parent_msg_id") != output.get("parent_msg_id"):
            return False
        if before["content"].get("name") != output["content"].get("name"):
            return False
        text = before["content"].get("text", "") + output["content"].get("text", "")
        if len(text) > MERGED_TEXT_LIMIT:
            return False
        first_seq = before.get("coalesced", [before["seq"]])[0]
        merged = dict(output, content=dict(output["content"], text=text),
                      coalesced=[first_seq, output["seq"]])
        self.waiting.pop()  # it is the last one
        self.bytes -= len(last.payload)
        replacement = _with_kwargs(msg, merged)
        self._append(Waiting(replacement, self.encode(replacement), merged))
        return True

    def _drop_superseded(self, msg, output):
        display_id = (output["content"].get("transient") or {}).get("display_id")
        if display_id is None:
            return False
        superseded = [item for item in self.waiting
                      if item.kernel_output is not None
                      and item.msg.subscription == msg.subscription
                      and item.kernel_output["msg_type"] == "update_display_data"
                      and (item.kernel_output["content"].get("transient") or {}).get("display_id") == display_id]
        if not superseded:
            return False
        dropped = []
        for item in superseded:
            self._remove(item)
            dropped.extend(item.kernel_output.get("superseded", []) + [item.kernel_output["seq"]])
        # a new EVENT: the original's kwargs are shared with every other subscriber
        newer = dict(output, superseded=sorted(dropped))
        replacement = _with_kwargs(msg, newer)
        self._append(Waiting(replacement, self.encode(replacement), newer))
        return True

    # -- step 2: gaps ---------------------------------------------------------------

    def _replace_output_with_gaps(self):
        kept, gaps = deque(), {}
        for item in self.waiting:
            if item.kernel_output is None:
                kept.append(item)
                continue
            out = item.kernel_output
            if out["msg_type"] == "gap":
                seqs = [out["from_seq"], out["to_seq"]]
            else:
                seqs = out.get("coalesced") or [out["seq"]] * 2
            gap = gaps.get(item.msg.subscription)
            if gap is None:
                gap = gaps[item.msg.subscription] = {"msg_type": "gap", "from_seq": seqs[0],
                                                     "to_seq": seqs[-1], "seq": None,
                                                     "content": {}, "template": item.msg}
                kept.append(gap)
            else:
                gap["from_seq"] = min(gap["from_seq"], seqs[0])
                gap["to_seq"] = max(gap["to_seq"], seqs[-1])
        self.waiting, self.bytes = deque(), 0
        for item in kept:
            if isinstance(item, dict):
                template = item.pop("template")
                item = _gap_item(template, item, self.encode)
            self._append(item)


def _with_kwargs(msg, kwargs):
    return message.Event(msg.subscription, msg.publication, args=msg.args, kwargs=kwargs,
                         publisher=msg.publisher, publisher_authid=msg.publisher_authid,
                         publisher_authrole=msg.publisher_authrole, topic=msg.topic)


def _gap_item(template, gap, encode):
    """A gap output standing in for kernel output that was dropped (a Waiting item)."""
    event = _with_kwargs(template, gap)
    marker = dict(gap, seq=gap["to_seq"])  # later output of the same subscription merges into it
    return Waiting(event, encode(event), marker)
