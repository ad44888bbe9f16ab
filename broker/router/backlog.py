"""One peer's backlog: the messages waiting for its socket, in order, and their indices.

The backlog knows nothing of what events mean: an
:class:`~broker.backlog_policy.IBacklogPolicy` says which EVENTs may be merged,
replaced or summarized as a gap. The backlog makes each of those steps cost the
same however long it is:

* a dropped message stays in place as a *tombstone* (no bytes) until it
  reaches the front, or until tombstones outnumber live messages and the
  backlog is compacted in one pass;
* per subscription, the waiting events the policy concerns that no gap
  covers yet, and its waiting gap: a gap pass walks only the former, folding
  them into the latter, so each event is walked at most once;
* per subscription and supersession key, the waiting events a newer one
  replaces.

``visited`` counts the entries walked by gap passes and compactions, so tests
can check the work per message stays bounded.
"""

from collections import deque

#: compact when more than this many tombstones wait, and more than live messages
COMPACT_ABOVE = 1024


class Waiting:
    """One message waiting to be written (``msg`` None once dropped)."""

    __slots__ = ("msg", "payload", "subscription", "key")

    def __init__(self, msg, payload, subscription=None, key=None):
        self.msg, self.payload = msg, payload
        #: set for events the policy concerns: the indices they are in
        self.subscription, self.key = subscription, key


class Backlog:
    """The waiting messages of one peer and the maps that index them (their one owner)."""

    def __init__(self, policy, encode):
        self.policy, self.encode = policy, encode
        self.visited = self.gap_passes = 0
        self.clear()

    def clear(self):
        """Forget everything waiting."""
        self.items = deque()
        self.bytes = self.tombstones = 0
        self._ungapped = {}  # subscription -> deque of its waiting events no gap covers
        self._gaps = {}  # subscription -> its waiting gap
        self._keyed = {}  # (subscription, supersession key) -> deque of waiting events

    def __bool__(self):
        return bool(self.items)

    def messages(self):
        """The messages waiting, oldest first."""
        return [item.msg for item in self.items if item.msg is not None]

    # -- in and out ---------------------------------------------------------------

    def add(self, msg, payload, concerned=False, key=None):
        """Append a message; *concerned*: an EVENT the policy may shrink, with its *key*."""
        if not concerned:
            return self._append(Waiting(msg, payload))
        item = Waiting(msg, payload, msg.subscription, key)
        self._append(item)
        self._ungapped.setdefault(item.subscription, deque()).append(item)
        if key is not None:
            self._keyed.setdefault((item.subscription, key), deque()).append(item)

    def popleft(self):
        """Remove the oldest entry; its payload, or None if it was dropped."""
        item = self.items.popleft()
        if item.subscription is not None:
            self._forget(item)
        if item.msg is None:
            self.tombstones -= 1
            return None
        self.bytes -= len(item.payload)
        return item.payload

    def _append(self, item):
        self.items.append(item)
        self.bytes += len(item.payload)

    def _forget(self, item):
        """Take the oldest entry out of the indices (it is first in each it is in)."""
        subscription = item.subscription
        _pop_if_first(self._ungapped, subscription, item)
        if self._gaps.get(subscription) is item:
            del self._gaps[subscription]
        if item.key is not None:
            _pop_if_first(self._keyed, (subscription, item.key), item)

    # -- shrinking ------------------------------------------------------------------

    def has_gaps(self):
        return bool(self._gaps)

    def fold_into_gap(self, event):
        """Fold an EVENT into its subscription's waiting gap, if the gap covers all it has waiting.

        False if there is no such gap, or the policy does not concern the event.
        """
        gap = self._gaps.get(event.subscription)
        if gap is None or event.subscription in self._ungapped or not self.policy.concerns(event):
            return False
        self._replace(gap, self.policy.gap(gap.msg, event))
        return True

    def coalesce(self, event, key):
        """Replace what *event* supersedes, or merge it into the last entry; False if neither."""
        if key is not None:
            return self._supersede(event, key)
        last = self.items[-1] if self.items else None
        if last is None or last.msg is None or last.subscription != event.subscription:
            return False
        merged = self.policy.merged(last.msg, event)
        if merged is None:
            return False
        self._replace(last, merged)
        return True

    def _supersede(self, event, key):
        """Drop the waiting events *event* supersedes, newest first, while the policy agrees."""
        older = self._keyed.get((event.subscription, key), ())
        replacement = event
        while older:
            item = older[-1]
            if item.msg is not None:
                superseding = self.policy.superseding(item.msg, replacement)
                if superseding is None:
                    break
                replacement = superseding
                self._drop(item)
            older.pop()
        if not older:
            self._keyed.pop((event.subscription, key), None)
        if replacement is event:
            return False
        self.add(replacement, self.encode(replacement), True, key)
        self._compact_if_sparse()
        return True

    def gap_all(self):
        """Fold each subscription's waiting events that no gap covers into its one gap.

        A subscription's gap takes the place of its oldest such event, unless
        one is already waiting. Each event is walked once: afterwards it is a
        gap or a tombstone.
        """
        if not self._ungapped:
            return
        ungapped, self._ungapped = self._ungapped, {}
        self.gap_passes += 1
        for subscription, items in ungapped.items():
            self._gap(subscription, items)
        self._compact_if_sparse()

    def _gap(self, subscription, items):
        gap = self._gaps.get(subscription)
        summary = gap.msg if gap is not None else None
        for item in items:
            self.visited += 1
            if item.msg is None:
                continue
            summary = self.policy.gap(summary, item.msg)
            if item.key is not None:
                self._keyed.pop((subscription, item.key), None)
                item.key = None
            if gap is None:
                gap = item
            else:
                self._drop(item)
        if gap is not None:
            self._replace(gap, summary)
            self._gaps[subscription] = gap

    def _replace(self, item, msg):
        payload = self.encode(msg)
        self.bytes += len(payload) - len(item.payload)
        item.msg, item.payload = msg, payload

    def _drop(self, item):
        self.bytes -= len(item.payload)
        item.msg, item.payload = None, b""
        self.tombstones += 1

    def _compact_if_sparse(self):
        """Remove tombstones in one pass once they outnumber live entries."""
        if self.tombstones <= COMPACT_ABOVE or 2 * self.tombstones <= len(self.items):
            return
        self.visited += len(self.items)
        self.items = deque(item for item in self.items if item.msg is not None)
        self.tombstones = 0
        for table in (self._ungapped, self._keyed):
            for name, items in list(table.items()):
                live = deque(item for item in items if item.msg is not None)
                if live:
                    table[name] = live
                else:
                    del table[name]


def _pop_if_first(table, name, item):
    items = table.get(name)
    if items and items[0] is item:
        items.popleft()
        if not items:
            del table[name]
