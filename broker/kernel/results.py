"""What the final result of an ``execute`` carries: its newest outputs within a byte bound.

Both sides build that result the same way, with :class:`ResultOutputs`: the
kernel host while the cell runs (``KernelConversation``), and the Python
client when it follows an execution past a dropped connection
(``broker.client.execution``). Outputs are added as they come and the oldest
are dropped at once when the bound is passed, so a cell that prints for an
hour holds at most :data:`MAX_RESULT_OUTPUT_BYTES` of output for its result,
not everything it printed; ``omitted`` names the seqs left out.

This module imports nothing but :mod:`broker.kernel.history` (for the one
size estimate), so the client may import it.
"""

from collections import deque

from broker.kernel.history import approximate_size

#: the final result of execute carries at most this much output (WAMP messages
#: are bounded: --max-message-size); the rest is named, and in outputs(since=…)
MAX_RESULT_OUTPUT_BYTES = 4 * 1024 * 1024


def seq_range(output):
    """``(first, last)``: the seqs *output* stands for (a coalesced output stands for several)."""
    merged = output.get("coalesced")
    if isinstance(merged, (list, tuple)) and len(merged) == 2:
        return merged[0], merged[1]
    return output["seq"], output["seq"]


class ResultOutputs:
    """An execution's outputs for its final result: the newest within a budget; the seqs left out.

    A ``gap`` notice (``{msg_type: "gap", from_seq, to_seq}``, output the
    client could not get) is not kept: its seqs join ``omitted``.
    """

    __slots__ = ("budget", "omitted", "_kept", "_bytes")

    def __init__(self, budget=MAX_RESULT_OUTPUT_BYTES):
        self.budget = budget
        self.omitted = None
        self._kept = deque()  # (output, size)
        self._bytes = 0

    @property
    def outputs(self):
        """The outputs kept, oldest first (a new list)."""
        return [output for output, _ in self._kept]

    @property
    def size(self):
        """The approximate bytes of the outputs kept (at most ``budget``)."""
        return self._bytes

    def __len__(self):
        return len(self._kept)

    def add(self, output, size=None):
        """Keep *output*; drop the oldest kept while they pass the budget.

        *size* is its :func:`approximate_size`, if the caller has measured it already.
        """
        if output.get("msg_type") == "gap":
            return self._omit(output["from_seq"], output["to_seq"])
        if size is None:
            size = approximate_size(output)
        self._kept.append((output, size))
        self._bytes += size
        while self._bytes > self.budget:
            dropped, size = self._kept.popleft()
            self._bytes -= size
            self._omit(*seq_range(dropped))

    def _omit(self, first, last):
        if self.omitted is None:
            self.omitted = [first, last]
        else:
            self.omitted = [min(first, self.omitted[0]), max(last, self.omitted[1])]
