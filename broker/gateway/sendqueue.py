"""Frames to one kernel WebSocket, bounded: a client that does not read is closed, never buffered for.

The queue is the transport's push producer: while the socket's send buffer
drains, frames are written at once; while Twisted says the peer is behind
(``pauseProducing``), they wait here, counted in bytes. Past ``limit``
bytes waiting, the socket is closed (``on_overflow``): a Jupyter client has
no way to take a gap marker, so it gets every message or a closed socket,
and on reconnecting with its ``session_id`` it is sent what it missed from
the kernel's history (:mod:`broker.gateway.replay`).
"""

from collections import deque

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

#: bytes that may wait for a slow kernel WebSocket client before it is closed
DEFAULT_LIMIT = 16 * 1024 * 1024


@implementer(IPushProducer)
class SendQueue:
    """``send(frame, is_binary)`` now or once the peer reads; ``on_overflow()`` past *limit* bytes."""

    def __init__(self, write, on_overflow, limit=DEFAULT_LIMIT):
        self.write = write
        self.on_overflow = on_overflow
        self.limit = limit
        self.paused = False
        self.queued = 0
        self.overflowed = False
        self._frames = deque()

    def send(self, frame, is_binary):
        if self.overflowed:
            return
        if not self.paused and not self._frames:
            return self.write(frame, is_binary)
        self._frames.append((frame, is_binary))
        self.queued += len(frame)
        if self.queued > self.limit:
            self.overflowed = True
            self._frames.clear()
            self.on_overflow(self.queued)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        while self._frames and not self.paused:
            frame, is_binary = self._frames.popleft()
            self.queued -= len(frame)
            self.write(frame, is_binary)

    def stopProducing(self):
        self._frames.clear()
        self.queued = 0
