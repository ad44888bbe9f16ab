"""A kernel's recent ``execute_reply`` contents, for callers that lost their call.

The ``execute_reply`` of a request is not an iopub message, so it is not in
the output history. A client whose connection dropped while its ``execute``
ran follows the rest of it on the kernel's topics and history, then asks
``reply(msg_id)`` for the reply: :class:`RecentReplies` keeps the newest
ones, within a limit in replies and one in bytes per reply (a larger reply is
kept without its ``user_expressions`` and ``payload``, or with only its
status, and marked ``truncated``).
"""

import json
from collections import OrderedDict

from twisted.internet import defer

from broker import errors

DEFAULT_MAX_REPLIES = 256
DEFAULT_MAX_REPLY_BYTES = 16 * 1024
_BULKY = ("user_expressions", "payload")
_ESSENTIAL = ("status", "execution_count", "ename", "evalue")
_MAX_EVALUE = 1024


class NoSuchRequest(errors.Condition, LookupError):
    """No recent (or pending) execute request has that msg_id."""

    uri = errors.NO_SUCH_REQUEST


def _size(content):
    return len(json.dumps(content, default=repr))


def bounded_reply(content, max_bytes=DEFAULT_MAX_REPLY_BYTES):
    """``(content, truncated)``: *content* itself if within *max_bytes*, else a smaller copy."""
    if _size(content) <= max_bytes:
        return content, False
    lighter = {k: v for k, v in content.items() if k not in _BULKY}
    if _size(lighter) <= max_bytes:
        return lighter, True
    essential = {k: content[k] for k in _ESSENTIAL if k in content}
    if isinstance(essential.get("evalue"), str):
        essential["evalue"] = essential["evalue"][:_MAX_EVALUE]
    return essential, True


class RecentReplies:
    """The newest execute replies by msg_id; ``wait_for`` a reply still to come."""

    def __init__(self, max_replies=DEFAULT_MAX_REPLIES, max_bytes=DEFAULT_MAX_REPLY_BYTES):
        self.max_replies = max_replies
        self.max_bytes = max_bytes
        self._replies = OrderedDict()
        self._waiters = {}  # msg_id -> [Deferred]

    def __len__(self):
        return len(self._replies)

    def record(self, msg_id, content):
        """Keep the reply *content* to request *msg_id* (dropping the oldest beyond the limit)."""
        kept, truncated = bounded_reply(content, self.max_bytes)
        entry = {"msg_id": msg_id, "status": kept.get("status"),
                 "execution_count": kept.get("execution_count"), "reply": kept,
                 "truncated": truncated}
        self._replies[msg_id] = entry
        self._replies.move_to_end(msg_id)
        while len(self._replies) > self.max_replies:
            self._replies.popitem(last=False)
        for waiter in self._waiters.pop(msg_id, []):
            waiter.callback(entry)

    def get(self, msg_id):
        """``{msg_id, status, execution_count, reply, truncated}``, or None if not kept."""
        return self._replies.get(msg_id)

    def wait_for(self, msg_id):
        """A Deferred that fires with the entry once the reply to *msg_id* is recorded."""
        def forget(d):
            waiting = self._waiters.get(msg_id, [])
            if d in waiting:
                waiting.remove(d)
            if not waiting:
                self._waiters.pop(msg_id, None)
        waiter = defer.Deferred(forget)
        self._waiters.setdefault(msg_id, []).append(waiter)
        return waiter

    def fail_waiters(self, failure):
        """Fail every ``wait_for`` (the kernel died: the replies will not come)."""
        waiters, self._waiters = self._waiters, {}
        for waiting in waiters.values():
            for waiter in waiting:
                waiter.errback(failure)
