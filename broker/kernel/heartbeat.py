"""Noticing a kernel that stops answering its heartbeat.

:class:`HeartbeatMonitor` pings every *interval* seconds, waits at most
*timeout* for the echo, and calls ``on_heartbeat_lost()`` once after
*max_misses* pings in a row went unanswered; then it stops. Time is the
*clock* passed in (the reactor, or a ``task.Clock`` in tests) and a ping is
any function returning a Deferred, such as ``KernelChannels.ping``.
"""

from twisted.internet import defer
from twisted.logger import Logger


class HeartbeatMonitor:
    """Pings a kernel on a steady beat and reports it lost after consecutive misses."""

    log = Logger()

    def __init__(self, clock, ping, on_heartbeat_lost, interval=3.0, timeout=None,
                 max_misses=3, kernel_id=None):
        timeout = interval if timeout is None else timeout
        if not 0 < timeout <= interval:
            raise ValueError(f"timeout must be > 0 and <= interval ({interval}), not {timeout}")
        if max_misses < 1:
            raise ValueError(f"max_misses must be at least 1, not {max_misses}")
        self.clock = clock
        self.ping = ping
        self.on_heartbeat_lost = on_heartbeat_lost
        self.interval = interval
        self.timeout = timeout
        self.max_misses = max_misses
        self.kernel_id = kernel_id
        self.misses = 0
        self.running = False
        self._next_beat = None
        self._in_flight = None

    def start(self):
        """Ping now, then every *interval* seconds."""
        if not self.running:
            self.running = True
            self.misses = 0
            self._beat()

    def stop(self):
        """Stop pinging; an unanswered ping in flight is abandoned, not counted."""
        self.running = False
        if self._next_beat is not None and self._next_beat.active():
            self._next_beat.cancel()
        self._next_beat = None
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.cancel()

    def _beat(self):
        self._next_beat = None
        started = self.clock.seconds()
        d = self._in_flight = defer.maybeDeferred(self.ping)
        d.addTimeout(self.timeout, self.clock)
        d.addCallbacks(self._answered, self._missed,
                       callbackArgs=(d, started), errbackArgs=(d, started))

    def _settled(self, d, started):
        """Whether *d* is the ping this monitor still waits for; if so, plan the next beat."""
        if not (self.running and d is self._in_flight):
            return False
        self._in_flight = None
        delay = max(0.0, started + self.interval - self.clock.seconds())
        self._next_beat = self.clock.callLater(delay, self._beat)
        return True

    def _answered(self, _echo, d, started):
        if self._settled(d, started):
            self.misses = 0

    def _missed(self, failure, d, started):
        if not self._settled(d, started):
            return
        self.misses += 1
        self.log.info(
            "kernel {kernel_id} missed heartbeat {misses}/{max_misses}: {why}",
            kernel_id=self.kernel_id, misses=self.misses, max_misses=self.max_misses,
            why=failure.getErrorMessage() or failure.type.__name__,
        )
        if self.misses >= self.max_misses:
            self.stop()
            self.log.warn("kernel {kernel_id} heartbeat lost", kernel_id=self.kernel_id)
            self.on_heartbeat_lost()
