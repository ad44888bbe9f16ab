"""The progressive results of one request: stream text that arrives together goes as one.

A caller of ``execute`` with ``receive_progress`` gets each output message as a
progressive result. A kernel printing fast sends one iopub message per flushed
line; when several of them reach the service together (in one turn of the
reactor: the service was busy, or off the CPU, while they came), the ``stream``
outputs among them that follow each other on the same stream (``stdout`` or
``stderr``) are merged into one progressive result, as the router does for a
slow watcher: its ``text`` is theirs joined, its ``seq`` the last one's, and
``coalesced: [first_seq, last_seq]`` names them all. Nothing is lost and the
order is kept: any other output first sends what is waiting. A caller that
keeps up still gets each output alone, one turn later at most; one that does
not, or a service that falls behind, gets fewer, larger results, each of which
costs both sides about what a single one does.

Only progress is merged: the kernel's topics, its history and the final result
keep every output message as it came.
"""

#: a merged stream output grows to this many characters, then a new one starts
MERGED_TEXT_LIMIT = 64 * 1024


class ProgressBatch:
    """What one request's progress callback is sent, with stream text of one turn merged."""

    def __init__(self, send, clock):
        """*send(output)* delivers one progressive result; *clock* schedules the end of a turn."""
        self._send = send
        self._clock = clock
        self._waiting = None     # a stream output (perhaps merged) not sent yet
        self._scheduled = None

    def give(self, output):
        """Send *output* now, or, if it is stream text, at the end of this turn with what follows."""
        if output.get("msg_type") != "stream":
            self.flush()
            return self._send(output)
        waiting = self._waiting
        if waiting is not None:
            merged = _merged(waiting, output)
            if merged is not None:
                self._waiting = merged
                return None
            self.flush()
        self._waiting = output
        if self._scheduled is None:
            self._scheduled = self._clock.callLater(0, self._turn_ended)
        return None

    def flush(self):
        """Send what is waiting (before any other output, and before the request ends)."""
        if self._scheduled is not None:
            if self._scheduled.active():
                self._scheduled.cancel()
            self._scheduled = None
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._send(waiting)

    def _turn_ended(self):
        self._scheduled = None
        self.flush()


def _merged(before, output):
    """*before* and *output* as one stream output, or None if they cannot be one."""
    content, earlier = output.get("content") or {}, before.get("content") or {}
    text, previous = content.get("text"), earlier.get("text")
    if not isinstance(text, str) or not isinstance(previous, str):
        return None
    if earlier.get("name") != content.get("name") or "buffers" in output or "buffers" in before:
        return None
    if len(previous) + len(text) > MERGED_TEXT_LIMIT:
        return None
    first_seq = (before.get("coalesced") or [before["seq"]])[0]
    return dict(output, content=dict(content, text=previous + text),
                coalesced=[first_seq, output["seq"]])
