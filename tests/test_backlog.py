"""The backlog's work per message is bounded, and its policy is a seam the router only calls."""

from autobahn.wamp import message
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from broker.backlog_policy import DeliverEverything, IBacklogPolicy
from broker.kernel.backlog_policy import MAX_SUPERSEDED, KernelOutputPolicy
from broker.router.backpressure import OutboundQueue
from broker.router.router import Router
from tests.test_backpressure import Peer, output, seqs_covered, stream

FLOOD = 34_000


def client_event(n, size=400):
    """An EVENT a client published to itself: no policy may touch it."""
    return message.Event(99, n, args=["z" * size], publisher_authrole="user")


class SizedPeer(Peer):
    """A Peer whose payloads are as long as the message's arguments too (client events)."""

    def encode(self, msg):
        payload = super().encode(msg) + b" " * (len(repr(msg.args)) if msg.args else 0)
        self.messages[payload] = msg
        return payload


class LinearBacklogTests(SynchronousTestCase):
    """Past the gap mark, a message costs the same however long the backlog is."""

    def flooded(self, peer, count, every=None):
        """Send *count* kernel outputs (two subscriptions) and client events; drain one per *every*."""
        peer.queue.pauseProducing()
        for seq in range(1, count + 1):
            peer.queue.send(stream(seq, text="y" * 300, subscription=1 + seq % 2))
            peer.queue.send(client_event(seq))
            if every and seq % every == 0:  # a reader taking one message now and then
                peer.queue.resumeProducing()
                peer.queue.pauseProducing()

    def test_a_flood_past_the_gap_mark_walks_each_message_once(self):
        """34,000 outputs beside 34,000 client events: gap passes walk each output at most once."""
        peer = SizedPeer(coalesce_above=10**9, gap_above=200_000, close_above=10**9)
        self.flooded(peer, FLOOD)
        backlog = peer.queue.backlog
        self.assertLessEqual(backlog.visited, 2 * FLOOD)
        # a pass per crossing, not per message: once the client events alone pass
        # the mark, the gapped subscriptions' output widens their gaps
        self.assertLess(backlog.gap_passes, 20)
        peer.queue.resumeProducing()
        events = [m for m in peer.received() if m.kwargs]
        # each subscription's gap spans the seqs of both (a kernel's seqs interleave)
        self.assertTrue(set(seqs_covered(events)) == set(range(1, FLOOD + 1)))
        self.assertEqual(sum(1 for m in peer.received() if m.args), FLOOD)

    def test_a_reader_taking_a_little_now_and_then_keeps_the_work_linear(self):
        """Crossing the mark again and again (a reader taking one message now and then) walks each output once."""
        peer = Peer(coalesce_above=10**9, gap_above=50_000, close_above=10**9)
        queue = peer.queue
        queue.write = lambda payload: (peer.written.append(payload), queue.pauseProducing())
        queue.pauseProducing()
        for seq in range(1, FLOOD + 1):
            queue.send(stream(seq, text="y" * 300))
            if seq % 50 == 0:
                queue.resumeProducing()  # writes one message, then the socket is full again
        self.assertGreater(queue.backlog.gap_passes, 10)
        self.assertLessEqual(queue.backlog.visited, 2 * FLOOD)
        queue.write = peer.written.append
        queue.resumeProducing()
        self.assertTrue(seqs_covered(peer.received()) == list(range(1, FLOOD + 1)))

    def test_new_output_of_a_gapped_subscription_extends_its_gap(self):
        """While the backlog stays above the mark, a gapped subscription's output widens its gap."""
        peer = SizedPeer(coalesce_above=10**9, gap_above=20_000, close_above=10**9)
        self.flooded(peer, 200)
        self.assertTrue(peer.queue.backlog.has_gaps())
        waiting_before = len(peer.queue.waiting)
        for seq in range(201, 5001):
            peer.queue.send(stream(seq, text="y" * 300, subscription=1 + seq % 2))
        self.assertEqual(len(peer.queue.waiting), waiting_before)
        peer.queue.resumeProducing()
        gaps = [m.kwargs for m in peer.received() if m.kwargs and m.kwargs["msg_type"] == "gap"]
        self.assertEqual(len(gaps), 2)
        self.assertEqual(max(g["to_seq"] for g in gaps), 5000)

    def test_output_after_a_gap_pass_is_delivered_in_full(self):
        """Merging text past the gap mark triggers a pass too, so the output after it is not folded."""
        peer = Peer(coalesce_above=26_000, gap_above=100_000, close_above=10**9)
        peer.queue.pauseProducing()
        for seq in range(1, 2001):
            peer.queue.send(stream(seq, text=str(seq).rjust(100, ".") + "\n"))
        peer.queue.send(output(2001, "status", execution_state="idle"))
        self.assertLess(peer.queue.bytes, 100_000)
        peer.queue.resumeProducing()
        got = peer.received()
        self.assertEqual(got[-1].kwargs["msg_type"], "status")
        self.assertTrue(seqs_covered(got) == list(range(1, 2002)))

    def test_superseded_updates_leave_no_trail(self):
        """Many updates of one display: each drops the previous in O(1), tombstones are compacted."""
        peer = Peer(coalesce_above=0, gap_above=10**9, close_above=10**9)
        peer.queue.pauseProducing()
        peer.queue.send(client_event(0))
        for seq in range(1, 3001):
            peer.queue.send(output(seq, "update_display_data", data={"text/plain": str(seq)},
                                   transient={"display_id": "d"}))
        backlog = peer.queue.backlog
        self.assertLess(len(backlog.items), 1100)  # compaction keeps tombstones bounded
        self.assertLessEqual(backlog.visited, 2 * 3000)
        peer.queue.resumeProducing()
        updates = [m.kwargs for m in peer.received() if m.kwargs]
        self.assertEqual(updates[-1]["seq"], 3000)
        self.assertTrue(seqs_covered([message.Event(1, 1, kwargs=u) for u in updates])
                        == list(range(1, 3001)))

    def test_a_superseded_list_is_bounded(self):
        """An update names at most MAX_SUPERSEDED seqs, so a replacement's work is bounded too."""
        peer = Peer(coalesce_above=0, gap_above=10**9, close_above=10**9)
        peer.queue.pauseProducing()
        for seq in range(1, 5001):
            peer.queue.send(output(seq, "update_display_data", data={}, transient={"display_id": "d"}))
        peer.queue.resumeProducing()
        updates = [m.kwargs for m in peer.received()]
        self.assertLessEqual(max(len(u.get("superseded", ())) for u in updates), MAX_SUPERSEDED)
        self.assertEqual(len(updates), 5)  # 4 full lists, then the newest
        self.assertEqual([u["seq"] for u in updates], sorted(u["seq"] for u in updates))
        self.assertTrue(seqs_covered(peer.received()) == list(range(1, 5001)))


class BacklogPolicySeamTests(SynchronousTestCase):
    """The router asks a registered policy; without one it merges and drops nothing."""

    def test_policies_provide_the_interface(self):
        """Both shipped policies implement IBacklogPolicy."""
        verifyObject(IBacklogPolicy, KernelOutputPolicy())
        verifyObject(IBacklogPolicy, DeliverEverything())

    def test_without_a_policy_kernel_output_is_delivered_as_is(self):
        """A queue with the router's default policy never coalesces nor gaps, even kernel output."""
        written = []
        queue = OutboundQueue(lambda m: b"x" * 200, written.append, lambda q: None,
                              coalesce_above=0, gap_above=1000, close_above=10**9)
        queue.pauseProducing()
        for seq in range(1, 101):
            queue.send(stream(seq))
        queue.resumeProducing()
        self.assertEqual(len(written), 100)

    def test_the_router_hands_its_policy_to_connections(self):
        """use_backlog_policy checks the interface and is what new connections get."""
        router = Router([], {}, {})
        self.assertIsInstance(router.backlog_policy, DeliverEverything)
        policy = KernelOutputPolicy()
        router.use_backlog_policy(policy)
        self.assertIs(router.backlog_policy, policy)
        with self.assertRaises(Exception):
            router.use_backlog_policy(object())
