"""The bounded outputs of an execute's final result (broker.kernel.results), shared by service and client."""

import json

from twisted.trial.unittest import SynchronousTestCase

from broker.client.ordering import gap_notice
from broker.kernel.history import approximate_size
from broker.kernel.results import ResultOutputs, seq_range


def out(seq, text="x" * 40, **more):
    return {"seq": seq, "msg_type": "stream", "content": {"name": "stdout", "text": text},
            "metadata": {}, "parent_msg_id": "p1", "caller": None} | more


class ResultOutputsTests(SynchronousTestCase):
    """The newest outputs within a byte budget, and the seqs left out."""

    def test_keeps_the_newest_within_budget_and_names_the_rest(self):
        """Outputs over the budget are left out, their seqs named in omitted, as are lost ones."""
        kept = ResultOutputs(budget=2 * approximate_size(out(1)))
        for seq in range(1, 6):
            kept.add(out(seq))
        self.assertEqual([o["seq"] for o in kept.outputs], [4, 5])
        self.assertEqual(kept.omitted, [1, 3])
        kept.add(gap_notice(6, 8))
        self.assertEqual(kept.omitted, [1, 8])
        self.assertEqual([o["seq"] for o in kept.outputs], [4, 5])

    def test_nothing_omitted_within_budget(self):
        """Outputs within the budget are all kept, in order, and omitted is None."""
        kept = ResultOutputs()
        for seq in range(1, 4):
            kept.add(out(seq))
        self.assertEqual([o["seq"] for o in kept.outputs], [1, 2, 3])
        self.assertIsNone(kept.omitted)
        self.assertEqual(kept.size, 3 * approximate_size(out(1)))

    def test_holds_no_more_than_its_budget_while_filling(self):
        """However many outputs come, what is held never passes the budget."""
        kept = ResultOutputs(budget=10_000)
        for seq in range(1, 5001):
            kept.add(out(seq))
            self.assertLessEqual(kept.size, 10_000)
        self.assertEqual(kept.omitted, [1, 5000 - len(kept)])
        self.assertEqual(kept.outputs[-1]["seq"], 5000)

    def test_an_output_larger_than_the_budget_is_omitted(self):
        """One output bigger than the whole budget is not kept: its seq is named instead."""
        kept = ResultOutputs(budget=100)
        kept.add(out(1, text="y" * 1000))
        self.assertEqual((kept.outputs, kept.omitted), ([], [1, 1]))

    def test_what_is_kept_fits_its_budget_on_the_wire(self):
        """Many one-character lines, as JSON with their seq, parent and caller, stay within the budget."""
        kept = ResultOutputs(budget=256 * 1024)
        caller = {"session": 4503599627370495, "authid": "user-a1b2c3d4", "authrole": "user"}
        for seq in range(1, 20001):
            kept.add(out(seq, text="1\n", parent_msg_id="6f1c2a9e-5d0b4c7f9a8e3b21_1234_56",
                         caller=caller))
        self.assertIsNotNone(kept.omitted)
        self.assertLessEqual(len(json.dumps(kept.outputs)), kept.budget)

    def test_a_coalesced_output_omits_all_its_seqs(self):
        """A dropped output standing for several seqs (coalesced) names all of them."""
        kept = ResultOutputs(budget=approximate_size(out(1)))
        kept.add(out(1, coalesced=[1, 7]))
        kept.add(out(8))
        self.assertEqual(kept.omitted, [1, 7])
        self.assertEqual(seq_range(out(3)), (3, 3))
