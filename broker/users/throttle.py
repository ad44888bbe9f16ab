"""Slowing down guessed passwords: failures per user and per address, on an injected clock.

Each key (``user:alice``, ``address:203.0.113.7``) may fail a few times
freely; after that each further failure makes the key wait before its next
attempt is even checked: 1 s, 2 s, 4 s … up to :data:`MAX_DELAY`. An attempt
during the wait is refused without looking at the password (and does not
extend the wait, so the rightful user is locked out at most that long). A
success clears the user's key. Keys idle for :data:`FORGET_AFTER` are
forgotten, and at most :data:`MAX_KEYS` are kept (the oldest go first), so
the table stays bounded whatever an attacker sends.
"""

from collections import OrderedDict

FREE_FAILURES = {"user": 5, "address": 20}
MAX_DELAY = 60.0
FORGET_AFTER = 15 * 60.0
MAX_KEYS = 10000


class _Record:
    __slots__ = ("failures", "last", "not_before")

    def __init__(self):
        self.failures = 0
        self.last = self.not_before = 0.0


class FailureThrottle:
    """Failed sign-ins by key; how long a key must wait before its next attempt."""

    def __init__(self, clock, free=FREE_FAILURES, max_delay=MAX_DELAY,
                 forget_after=FORGET_AFTER, max_keys=MAX_KEYS):
        self.clock = clock
        self.free = free
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._records = OrderedDict()  # key -> _Record, least recently failed first

    def __len__(self):
        return len(self._records)

    def wait(self, keys):
        """Seconds until every one of *keys* may try again (0: now)."""
        now = self.clock.seconds()
        return max([0.0] + [self._records[k].not_before - now for k in keys
                            if k in self._records])

    def failed(self, keys):
        """Count a failed attempt against each of *keys*."""
        now = self.clock.seconds()
        self._forget_idle(now)
        for key in keys:
            record = self._records.pop(key, None) or _Record()
            self._records[key] = record
            record.failures += 1
            record.last = now
            over = record.failures - self.free[key.split(":", 1)[0]]
            if over > 0:
                record.not_before = now + min(2.0 ** (over - 1), self.max_delay)
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)

    def succeeded(self, key):
        """Forget *key*'s failures (the user signed in)."""
        self._records.pop(key, None)

    def _forget_idle(self, now):
        while self._records:
            key, record = next(iter(self._records.items()))
            if now - record.last < self.forget_after:
                return
            del self._records[key]


def address_of(peer):
    """The address part of an Autobahn peer string (``tcp4:127.0.0.1:40312`` -> ``127.0.0.1``)."""
    if not isinstance(peer, str):
        return "unknown"
    kind, _, rest = peer.partition(":")
    if kind in ("tcp4", "tcp6") and ":" in rest:
        return rest.rsplit(":", 1)[0]
    return peer
