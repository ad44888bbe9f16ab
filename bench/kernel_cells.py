"""
What every client of the kernel benchmark shares: the cells it runs and how it counts
the lines that come back.  No Twisted here: ``direct_worker.py`` (blocking
jupyter_client) imports it as well as the Twisted clients.
"""

import time

KERNEL_NAME = "python3"
WEBKERNEL_REALM = "webkernel"
LATENCY_CODE = "1+1"
LATENCY_RESULT = "2"


def stream_code(lines, tag=None):
    """The cell that prints ``lines`` flushed lines, ``0`` … ``lines-1``; ``tag`` names a round."""
    head = f"# {tag}\n" if tag else ""
    return f"{head}for i in range({lines}): print(i, flush=True)"


def round_tag(round_):
    return f"fan-out round {round_}"


class LineCounter:
    """The lines ``0`` … ``expected-1`` of one cell's stdout, as its stream messages arrive.

    Counts how many distinct lines arrived (``missing`` is the rest), and lines
    that came out of order or twice (``disorder``); a gap (a dropped message)
    is not disorder, it shows in ``missing``.  ``complete_at`` is the
    ``time.monotonic()`` at which the last missing line arrived.
    """

    def __init__(self, expected):
        self.expected = expected
        self.distinct = 0
        self.disorder = 0
        self.complete_at = None
        self.last_line_at = None
        self._partial = ""
        self._next = 0
        self._seen = bytearray(expected)

    @property
    def complete(self):
        return self.distinct == self.expected

    @property
    def missing(self):
        return self.expected - self.distinct

    def feed(self, text):
        """Count the complete lines in ``text``; True if this completes the set."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        before = self.distinct
        for line in lines:
            try:
                number = int(line)
            except ValueError:
                continue
            if number < self._next:
                self.disorder += 1
            self._next = number + 1
            if 0 <= number < self.expected and not self._seen[number]:
                self._seen[number] = 1
                self.distinct += 1
        if self.distinct != before:
            self.last_line_at = time.monotonic()
            if self.complete:
                self.complete_at = self.last_line_at
                return True
        return False

    def feed_output(self, msg_type, content):
        """Feed an output message: only ``stream`` messages on stdout carry the lines."""
        if msg_type == "stream" and content.get("name") == "stdout":
            return self.feed(content.get("text", ""))
        return False


class ExecutionFailed(Exception):
    """A benchmark cell did not run as it should (error reply, wrong result)."""


def check_latency_result(status, outputs):
    """``outputs`` are (msg_type, content) pairs of one ``1+1`` execution."""
    if status != "ok":
        raise ExecutionFailed(f"execute 1+1: status {status!r}")
    for msg_type, content in outputs:
        if msg_type == "execute_result":
            text = content.get("data", {}).get("text/plain")
            if text == LATENCY_RESULT:
                return
            raise ExecutionFailed(f"execute 1+1 gave {text!r}")
    raise ExecutionFailed("execute 1+1: no execute_result")
