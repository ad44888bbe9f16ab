"""What a session's connection does with output its peer is not reading fast enough.

While the socket accepts data, messages go straight through. When the socket
says "stop" (Twisted pauses its producer), messages wait in a
:class:`~broker.router.backlog.Backlog`, in order, and the amount waiting is
bounded in three steps:

1. above ``coalesce_above`` bytes, an EVENT may be merged into the one waiting
   just before it (same subscription), or replace waiting ones it makes
   superfluous;
2. above ``gap_above`` bytes, each subscription's waiting events are replaced
   by one *gap* event (its new events, while the backlog stays above the mark,
   widen that gap);
3. if what remains (RPC results, other events) still exceeds ``close_above``
   bytes, the session is closed with a logged reason.

Which events may be merged, replaced or summarized, and how, is not the
router's to know: an :class:`~broker.backlog_policy.IBacklogPolicy` registered
by the service wiring decides (for kernel output,
:mod:`broker.kernel.backlog_policy`). Without one nothing is merged or dropped.
Every step costs the same however long the backlog is.

A message the peer cannot receive at all (larger than its limit, or holding a
value its serializer cannot encode, which another peer's serializer could
decode) is refused here, one peer at a time: an answer to a call becomes an
ERROR for that call, an INVOCATION raises so the dealer fails the call, and
anything else is dropped for this peer and logged.
"""

from autobahn.wamp import message
from twisted.logger import Logger

from broker import errors
from broker.backlog_policy import DeliverEverything
from broker.router.backlog import Backlog

_log = Logger()

DEFAULT_COALESCE_ABOVE = 1024 * 1024
DEFAULT_GAP_ABOVE = 8 * 1024 * 1024


class OutboundQueue:
    """The bounded, ordered backlog of one connection."""

    def __init__(self, encode, write, close, coalesce_above=DEFAULT_COALESCE_ABOVE,
                 gap_above=DEFAULT_GAP_ABOVE, close_above=16 * 1024 * 1024,
                 max_message=None, policy=None):
        self.encode, self.write, self.close = encode, write, close
        self.max_message = max_message
        self.coalesce_above = coalesce_above
        self.gap_above = gap_above
        self.close_above = close_above
        self.policy = policy if policy is not None else DeliverEverything()
        self.backlog = Backlog(self.policy, encode)
        self.paused = False
        self.closed = False

    @property
    def bytes(self):
        """Bytes waiting."""
        return self.backlog.bytes

    @property
    def waiting(self):
        """The messages waiting, oldest first."""
        return self.backlog.messages()

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
        backlog = self.backlog
        while backlog and not self.paused and not self.closed:
            payload = backlog.popleft()
            if payload is not None:
                self.write(payload)

    def stopProducing(self):
        self.closed = True
        self.backlog.clear()

    # -- sending ----------------------------------------------------------------

    def send(self, msg):
        """Write or queue *msg*.

        Raises :class:`~broker.errors.InvalidPayload` or
        :class:`~broker.errors.PayloadSizeExceeded` for an INVOCATION the
        peer cannot receive, so the dealer can answer its caller.
        """
        if self.closed:
            return
        backlog = self.backlog
        if (backlog.bytes > self.gap_above and type(msg) is message.Event
                and backlog.fold_into_gap(msg)):
            return  # it would be folded into the gap as soon as it is queued
        payload, refusal = self._encoded(msg)
        if refusal is not None:
            msg, payload = self._undeliverable(msg, payload, refusal)
            if msg is None:
                return
        if not self.paused and not backlog:
            return self.write(payload)
        self._queue(msg, payload)

    def _queue(self, msg, payload):
        backlog = self.backlog
        concerned = type(msg) is message.Event and self.policy.concerns(msg)
        key = self.policy.supersession_key(msg) if concerned else None
        if not (concerned and backlog.bytes > self.coalesce_above and backlog.coalesce(msg, key)):
            backlog.add(msg, payload, concerned, key)
        if backlog.bytes > self.gap_above:
            backlog.gap_all()
        if backlog.bytes > self.close_above:
            self.closed = True
            queued = backlog.bytes
            backlog.clear()
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

