"""A kernel's bounded output history: every output message with its ``seq``.

Output messages are numbered per kernel, gap-free, from 1. The history keeps
the newest ones within a limit in messages and one in bytes; ``since(seq)``
returns what came after *seq* and says honestly whether the history still
holds all of it.

A history can start after a given seq (a kernel re-attached after the
service restarted: the old history is gone, numbering goes on), and can ask a
*reserve* function for seqs before it hands them out (to record a high-water
mark that survives a crash; see :mod:`broker.kernel.records`).
"""

import json
from collections import deque
from itertools import islice

DEFAULT_MAX_MESSAGES = 10000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
#: most bytes of outputs one ``since`` answer carries (at least one output): a
#: WAMP message is bounded (``--max-message-size``, 16 MiB by default), so a
#: catch-up over a large history comes in pages; ask again from the last seq
PAGE_BYTES = 4 * 1024 * 1024


#: bytes of an output message besides its content, as JSON: seq, msg_type,
#: metadata, parent_msg_id (a Jupyter msg_id) and caller come to about 240
ENVELOPE_BYTES = 256


def approximate_size(output):
    """Bytes an output message takes, roughly (its content as JSON, and its envelope).

    Bytes, not characters: text is counted as UTF-8 (what goes on the wire; Python
    holds at most as much), so 4 MiB of emoji count 16 MiB against the limits.
    JSON's ``\\uXXXX`` escapes count non-ASCII content a little high: on the safe side.
    """
    content = output.get("content") or {}
    text = content.get("text")
    if isinstance(text, str) and len(content) <= 2:  # a stream message: cheap path
        return utf8_length(text) + ENVELOPE_BYTES
    return len(json.dumps(content, default=repr)) + ENVELOPE_BYTES


def utf8_length(text):
    """Bytes of *text* in UTF-8; ASCII text (the common case) without encoding it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class OutputHistory:
    """The newest output messages of one kernel, within limits."""

    def __init__(self, max_messages=DEFAULT_MAX_MESSAGES, max_bytes=DEFAULT_MAX_BYTES,
                 last_seq=0, reserve=None):
        """*reserve(seq)* is called before *seq* is handed out unless an earlier call covered
        it; it returns the highest seq now covered."""
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.last_seq = last_seq
        self._reserve = reserve
        self._reserved = last_seq if reserve is not None else float("inf")
        self._kept = deque()  # (output, size)
        self._bytes = 0

    @property
    def first_seq(self):
        """The seq of the oldest message kept (last_seq + 1 when empty)."""
        return self._kept[0][0]["seq"] if self._kept else self.last_seq + 1

    def append(self, output, size=None):
        """Number *output* (sets its ``seq``), keep it, drop the oldest beyond the limits.

        *size* is its :func:`approximate_size`, if the caller has measured it already.
        """
        if self.last_seq + 1 > self._reserved:
            self._reserved = self._reserve(self.last_seq + 1)
        self.last_seq += 1
        output["seq"] = self.last_seq
        if size is None:
            size = approximate_size(output)
        self._kept.append((output, size))
        self._bytes += size
        while self._kept and (len(self._kept) > self.max_messages or self._bytes > self.max_bytes):
            _, dropped = self._kept.popleft()
            self._bytes -= dropped
        return output

    def since(self, seq=0, limit=None, max_bytes=PAGE_BYTES):
        """``{first_seq, last_seq, outputs, complete}`` for messages after *seq*.

        At most *limit* outputs and, past the first, *max_bytes* of them: when
        the last output returned is below ``last_seq``, more follow.
        """
        first = self.first_seq
        start = max(0, seq - first + 1)  # seqs in the deque are contiguous
        stop = None if limit is None else start + max(0, limit)
        outputs, size = [], 0
        for output, output_size in islice(self._kept, start, stop):
            size += output_size
            if outputs and size > max_bytes:
                break
            outputs.append(output)
        return {
            "first_seq": first,
            "last_seq": self.last_seq,
            "outputs": outputs,
            "complete": seq + 1 >= first,
        }
