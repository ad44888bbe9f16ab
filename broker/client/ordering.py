"""A kernel's output messages in ``seq`` order, each once: the logic, with no network.

Output reaches a client on the kernel's topics and, after a reconnect or a
gap, from ``outputs(since=…)``; the same message may come both ways, and one
may come before those ahead of it. :class:`OutputSequencer` takes them all
and delivers each seq once, strictly in order, as the notebook page does
(``web/src/kernel.js``):

* an output covering several seqs (a slow connection's merged ``stream``,
  ``coalesced: [first, last]``) is delivered once, for all of them;
* the seqs an ``update_display_data`` lists in ``superseded`` are older
  updates of the same display, dropped on the way: nothing to deliver;
* a *gap marker* (``{msg_type: "gap", from_seq, to_seq}``, output dropped for
  a slow connection) and an output only partly delivered already say "fetch
  the history": :meth:`accept` returns True;
* a history page that no longer starts where it should (``complete: false``)
  becomes a *gap notice* delivered in its place, ``{msg_type: "gap",
  from_seq, to_seq, lost: True, …}``: nothing is lost silently.
"""

from broker.kernel.results import seq_range


def gap_notice(from_seq, to_seq):
    """The output message saying seqs *from_seq* to *to_seq* are lost (the history no longer has them)."""
    return {"seq": None, "msg_type": "gap", "from_seq": from_seq, "to_seq": to_seq, "lost": True,
            "content": {}, "metadata": {}, "parent_msg_id": None, "caller": None}


class OutputSequencer:
    """Delivers output messages in seq order, each once; ``applied`` is the last seq accounted for."""

    def __init__(self, deliver, applied=0):
        self.deliver = deliver
        self.applied = applied
        self._pending = {}  # first seq -> (output, or None for a superseded seq; last seq)

    @property
    def waiting(self):
        """True while outputs wait for ones ahead of them (a hole)."""
        return bool(self._pending)

    def accept(self, output):
        """Take an output (a topic event or a history item); True if the history must be fetched."""
        if output.get("msg_type") == "gap" and "from_seq" in output:  # a slow connection's gap marker
            return output["to_seq"] > self.applied
        if not isinstance(output.get("seq"), int):
            return False
        first, last = seq_range(output)
        if last <= self.applied or first in self._pending:
            return False  # delivered already, or waiting already
        if first <= self.applied:
            return True  # partly delivered: take the rest one by one from the history
        self._pending[first] = (output, last)
        for seq in output.get("superseded") or ():
            if seq > self.applied and seq not in self._pending:
                self._pending[seq] = (None, seq)
        self._drain()
        return False

    def accept_page(self, page):
        """Take a page of ``outputs(since=applied)``; True if the history may hold more after it."""
        first_seq = page.get("first_seq")
        if not page.get("complete", True) and isinstance(first_seq, int):
            self._lost_before(first_seq)
        before = self.applied
        outputs = page.get("outputs") or []
        for output in outputs:
            self.accept(output)
        return bool(outputs) and self.applied < page.get("last_seq", 0) and self.applied != before

    def start_at(self, seq):
        """Begin after *seq*: what came before is not wanted (a watch that starts now)."""
        if seq > self.applied:
            self.applied = seq
            self._drain()

    def _lost_before(self, seq):
        """The history starts at *seq*: deliver what waits before it, a gap notice for the rest."""
        while self.applied + 1 < seq:
            held = [s for s in self._pending if s < seq]
            upto = min(held) - 1 if held else seq - 1
            if upto > self.applied:
                lost = gap_notice(self.applied + 1, upto)
                self.applied = upto
                self.deliver(lost)
            self._drain()

    def _drain(self):
        while self.applied + 1 in self._pending:
            output, last = self._pending.pop(self.applied + 1)
            self.applied = max(self.applied, last)
            if output is not None:
                self.deliver(output)
        for seq in [s for s in self._pending if s <= self.applied]:
            del self._pending[seq]
