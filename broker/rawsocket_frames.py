"""RawSocket framing after the handshake: WAMP messages, PING and PONG.

Each frame is a 4-octet prefix (the first octet's low 3 bits the frame type,
its high 5 bits reserved and zero; 3 octets of payload length) and the payload.
Types (the WAMP spec, "RawSocket transport"): 0 a WAMP message, 1 PING, 2 PONG.
A router answers each PING with a PONG carrying the same payload; a PONG needs
no answer (the router sends no PINGs, so any PONG it gets is ignored).

:class:`FrameReader` splits received bytes into frames, holding at most one
unfinished frame; :class:`PongAnswers` writes the PONGs, and while the peer does
not read what the router sends it keeps only the newest one, so a peer that
sends PINGs and reads nothing cannot make the router's memory grow.
"""

import struct

from broker.errors import ProtocolViolation

MESSAGE, PING, PONG = 0, 1, 2
_NAMES = {MESSAGE: "WAMP message", PING: "PING", PONG: "PONG"}
_PREFIX = struct.Struct("!I")


class FrameRefused(ProtocolViolation):
    """A frame the router does not take: its text says why (sent in the ABORT)."""


def frame(kind, payload):
    """The bytes of one frame."""
    return _PREFIX.pack(kind << 24 | len(payload)) + payload


class FrameReader:
    """Splits a RawSocket byte stream into ``(kind, payload)`` frames.

    Frames of a reserved type, and frames longer than *max_length* (WAMP
    messages and PINGs alike), raise :class:`FrameRefused` as soon as their
    prefix arrives, before their payload is read.
    """

    def __init__(self, max_length):
        self.max_length = max_length
        self._unread = b""

    def feed(self, data):
        """Yield each frame *data* completes, in order."""
        buffer, offset = self._unread + data, 0
        self._unread = b""
        while len(buffer) - offset >= 4:
            (prefix,) = _PREFIX.unpack_from(buffer, offset)
            kind, length = prefix >> 24, prefix & 0xFFFFFF
            _check(kind, length, self.max_length)
            end = offset + 4 + length
            if len(buffer) < end:
                break
            payload, offset = buffer[offset + 4:end], end
            yield kind, payload
        self._unread = buffer[offset:]


def _check(kind, length, limit):
    if kind not in _NAMES:
        raise FrameRefused(f"RawSocket frame type {kind} (reserved) is not supported: send "
                           f"WAMP messages (type 0), PING (1) or PONG (2)")
    if length > limit:
        what = "message" if kind == MESSAGE else _NAMES[kind]
        raise FrameRefused(f"{what} of {length} bytes exceeds the limit of {limit} bytes")


class PongAnswers:
    """The transport's producer for a RawSocket connection: PONGs, then the session's queue.

    Pausing and resuming pass on to *queue* (the session's
    :class:`~broker.router.backpressure.OutboundQueue`); *write* writes bytes.
    A PING is answered at once unless the transport is paused; then its PONG
    waits, replacing any older one, and goes out first when it resumes.
    """

    def __init__(self, queue, write):
        self.queue, self.write = queue, write
        self.paused = False
        self.held = None

    def attach(self, transport):
        """Stand in front of *queue* as *transport*'s producer."""
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)

    def ping(self, payload):
        if self.paused:
            self.held = payload
        else:
            self.write(frame(PONG, payload))

    def pauseProducing(self):
        self.paused = True
        self.queue.pauseProducing()

    def resumeProducing(self):
        self.paused = False
        if self.held is not None:
            payload, self.held = self.held, None
            self.write(frame(PONG, payload))
        if not self.paused:
            self.queue.resumeProducing()

    def stopProducing(self):
        self.held = None
        self.queue.stopProducing()
