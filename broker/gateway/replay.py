"""What a Jupyter ``session_id`` missed while its kernel WebSocket was away.

A client that reconnects with the same ``session_id`` (GatewayClient passes
it on) is sent, before anything new, the kernel's outputs it has not seen
(``outputs(since=seq)`` of the kernel's history) and the ``execute_reply``
of each of its executions that ended meanwhile (``reply(msg_id)``). To
address them to the client's own requests, a :class:`SessionTrail` remembers
the request header behind each kernel ``msg_id`` the session caused.
:class:`SessionTrails` keeps at most :data:`MAX_TRAILS` of them (least
recently used out), each with at most :data:`MAX_PARENTS` headers.
"""

from collections import OrderedDict

MAX_TRAILS = 1000
MAX_PARENTS = 1000


class SessionTrail:
    """One session's last seen ``seq`` of one kernel, its requests' headers, its unanswered executions."""

    def __init__(self):
        self.last_seq = None          # None: never connected yet, nothing to replay
        self.parents = OrderedDict()  # kernel msg_id -> the client's request header
        self.unanswered = OrderedDict()  # kernel msg_id of an execute whose reply is not sent

    def remember(self, kernel_msg_id, header):
        """Note that the kernel's *kernel_msg_id* answers the client's request *header*."""
        if kernel_msg_id is None or kernel_msg_id in self.parents:
            return
        self.parents[kernel_msg_id] = header
        while len(self.parents) > MAX_PARENTS:
            old, _ = self.parents.popitem(last=False)
            self.unanswered.pop(old, None)

    def parent_of(self, kernel_msg_id):
        """The client's header behind *kernel_msg_id*, else a header naming only that id."""
        if kernel_msg_id is None:
            return {}
        return self.parents.get(kernel_msg_id) or {"msg_id": kernel_msg_id}

    def saw(self, seq):
        if isinstance(seq, int) and (self.last_seq is None or seq > self.last_seq):
            self.last_seq = seq


class SessionTrails:
    """The trails of recent sessions, by ``(authid, kernel id, session_id)``, bounded."""

    def __init__(self, limit=MAX_TRAILS):
        self.limit = limit
        self._trails = OrderedDict()

    def get(self, authid, kernel_id, session_id):
        """The trail of that session (a new one if unknown, or if *session_id* is empty)."""
        if not session_id:
            return SessionTrail()
        key = (authid, kernel_id, session_id)
        trail = self._trails.pop(key, None) or SessionTrail()
        self._trails[key] = trail
        while len(self._trails) > self.limit:
            self._trails.popitem(last=False)
        return trail
