"""A slow peer's backlog: coalesced, then gapped, then closed; never unbounded, never silent."""

from autobahn.wamp import message, role
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.auth import KERNEL_HOST_ROLE
from broker.kernel.backlog_policy import KernelOutputPolicy
from broker.router.backpressure import OutboundQueue


def output(seq, msg_type="stream", subscription=1, parent="p1", **content):
    kwargs = {"seq": seq, "msg_type": msg_type, "content": content, "metadata": {},
              "parent_msg_id": parent, "caller": None}
    return message.Event(subscription, seq, kwargs=kwargs, publisher=7,
                         publisher_authid="host", publisher_authrole=KERNEL_HOST_ROLE)


def stream(seq, text="x" * 100, name="stdout", **kw):
    return output(seq, "stream", name=name, text=text, **kw)


class Peer:
    """Records what reached the socket; the queue encodes with repr()."""

    def __init__(self, **limits):
        self.written, self.closed_with = [], None
        self.queue = OutboundQueue(self.encode, self.written.append, self.closed,
                                   policy=KernelOutputPolicy(), **limits)
        self.messages = {}

    def encode(self, msg):
        payload = repr(id(msg)).encode() + b" " * (len(repr(msg.kwargs)) if msg.kwargs else 10)
        self.messages[payload] = msg
        return payload

    def closed(self, queued):
        self.closed_with = queued

    def received(self):
        return [self.messages[p] for p in self.written]


def seqs_covered(events):
    """Every seq the events account for: delivered, coalesced or in a gap."""
    covered = []
    for e in events:
        kw = e.kwargs
        if kw["msg_type"] == "gap":
            covered.extend(range(kw["from_seq"], kw["to_seq"] + 1))
        elif "coalesced" in kw:
            covered.extend(range(kw["coalesced"][0], kw["coalesced"][1] + 1))
        else:
            covered.append(kw["seq"])
        covered.extend(kw.get("superseded", []))
    return sorted(covered)


class OutboundQueueTests(SynchronousTestCase):
    """The three steps of the bound, and order and completeness throughout."""

    def test_straight_through_while_the_socket_accepts(self):
        """Unpaused, every message is written at once, unchanged."""
        peer = Peer()
        for seq in range(1, 4):
            peer.queue.send(stream(seq))
        self.assertEqual([m.kwargs["seq"] for m in peer.received()], [1, 2, 3])
        self.assertEqual(peer.queue.bytes, 0)

    def test_waits_in_order_while_paused(self):
        """Paused below the coalescing mark, messages wait and then go out in order, unchanged."""
        peer = Peer(coalesce_above=10**6)
        peer.queue.pauseProducing()
        for seq in range(1, 4):
            peer.queue.send(stream(seq))
        self.assertEqual(peer.written, [])
        peer.queue.resumeProducing()
        self.assertEqual([m.kwargs["seq"] for m in peer.received()], [1, 2, 3])

    def test_streams_coalesce_above_the_mark(self):
        """Above the mark, consecutive stream text of one subscription and name is merged."""
        peer = Peer(coalesce_above=300)
        peer.queue.pauseProducing()
        for seq in range(1, 11):
            peer.queue.send(stream(seq, text=f"{seq}\n"))
        peer.queue.send(stream(11, text="err\n", name="stderr"))
        peer.queue.resumeProducing()
        got = peer.received()
        self.assertLess(len(got), 11)
        text = "".join(m.kwargs["content"]["text"] for m in got if m.kwargs["content"]["name"] == "stdout")
        self.assertEqual(text, "".join(f"{i}\n" for i in range(1, 11)))
        self.assertEqual(seqs_covered(got), list(range(1, 12)))
        self.assertEqual(got[-1].kwargs["content"]["name"], "stderr")

    def test_superseded_display_updates_are_dropped(self):
        """An update_display_data waiting behind a newer one for its display_id is dropped, and named."""
        peer = Peer(coalesce_above=0)
        peer.queue.pauseProducing()
        peer.queue.send(stream(1))
        for seq in (2, 3, 4):
            peer.queue.send(output(seq, "update_display_data", data={"text/plain": str(seq)},
                                   transient={"display_id": "bar"}))
        peer.queue.resumeProducing()
        got = peer.received()
        self.assertEqual([m.kwargs["seq"] for m in got], [1, 4])
        self.assertEqual(got[-1].kwargs["superseded"], [2, 3])

    def test_gap_replaces_output_above_the_hard_limit(self):
        """Above the gap mark, waiting kernel output becomes one gap per subscription; RPC results stay."""
        peer = Peer(coalesce_above=10**9, gap_above=2000, close_above=10**9)
        peer.queue.pauseProducing()
        peer.queue.send(stream(1))
        result = message.Result(5, args=["keep me"])
        peer.queue.send(result)
        for seq in range(2, 60):
            peer.queue.send(stream(seq, subscription=1 if seq % 2 else 2))
        self.assertLessEqual(peer.queue.bytes, 2000 + 400)
        peer.queue.resumeProducing()
        got = peer.received()
        self.assertIn(result, got)
        events = [m for m in got if isinstance(m, message.Event)]
        self.assertTrue(any(e.kwargs["msg_type"] == "gap" for e in events))
        # a gap covers a seq range; a kernel's seqs interleave across its subscriptions
        self.assertEqual(set(seqs_covered(events)), set(range(1, 60)))

    def test_close_when_what_remains_is_too_much(self):
        """A backlog of RPC results past the close mark closes the session, once."""
        peer = Peer(close_above=1000)
        peer.queue.pauseProducing()
        for request in range(100):
            peer.queue.send(message.Result(request, args=["y" * 50]))
        self.assertIsNotNone(peer.closed_with)
        self.assertEqual((peer.queue.bytes, list(peer.queue.waiting)), (0, []))
        peer.queue.resumeProducing()
        self.assertEqual(peer.written, [])

    def test_client_events_are_never_merged(self):
        """Events that are not the kernel host's output are never coalesced or dropped."""
        peer = Peer(coalesce_above=0, gap_above=10**9)
        peer.queue.pauseProducing()
        forged = output(1)
        forged = message.Event(1, 1, kwargs=forged.kwargs, publisher_authrole="user")
        peer.queue.send(forged)
        peer.queue.send(message.Event(1, 2, kwargs=dict(forged.kwargs, seq=2), publisher_authrole="user"))
        peer.queue.resumeProducing()
        self.assertEqual(len(peer.received()), 2)


class UndeliverableTests(SynchronousTestCase):
    """A message the peer cannot receive (too large, or a value its serializer cannot encode)."""

    def setUp(self):
        self.written = []
        self.queue = OutboundQueue(self.encode, self.written.append, lambda queued: None,
                                   max_message=100)

    def encode(self, msg):
        if msg.args and msg.args[0] == "unencodable":
            raise OverflowError("Integer value out of range")
        return b"x" * (500 if msg.args and msg.args[0] == "big" else 10)

    def test_an_answer_becomes_an_error_for_its_call(self):
        """RESULT (or a callee's ERROR) too large or unencodable: an ERROR for the caller instead."""
        encoded = []
        self.queue.encode = lambda msg: encoded.append(msg) or self.encode(msg)
        self.queue.send(message.Result(1, args=["unencodable"]))
        self.queue.send(message.Result(2, args=["big"]))
        self.queue.send(message.Error(message.Call.MESSAGE_TYPE, 3, "com.err", args=["big"]))
        self.assertEqual(len(self.written), 3)
        self.assertEqual([(m.request, m.error) for m in encoded if isinstance(m, message.Error)
                          and m.error != "com.err"],
                         [(1, errors.INVALID_PAYLOAD), (2, errors.PAYLOAD_SIZE_EXCEEDED),
                          (3, errors.PAYLOAD_SIZE_EXCEEDED)])

    def test_an_invocation_raises_for_the_dealer(self):
        """An INVOCATION the callee cannot receive raises, so the dealer answers its caller."""
        with self.assertRaises(errors.InvalidPayload):
            self.queue.send(message.Invocation(1, 2, args=["unencodable"]))
        with self.assertRaises(errors.PayloadSizeExceeded):
            self.queue.send(message.Invocation(1, 2, args=["big"]))
        self.assertEqual(self.written, [])

    def test_an_event_is_dropped_and_a_welcome_goes_on(self):
        """An EVENT is dropped (logged); a WELCOME too large is left to the transport to refuse."""
        self.queue.send(message.Event(1, 2, args=["unencodable"]))
        self.assertEqual(self.written, [])
        welcome = message.Welcome(1, {"broker": role.RoleBrokerFeatures()})
        self.queue.encode = lambda msg: b"w" * 600
        self.queue.send(welcome)
        self.assertEqual(self.written, [b"w" * 600])


class StrictJsonTests(SynchronousTestCase):
    """JSON peers never get NaN or Infinity (not JSON); they are refused for that peer only."""

    def setUp(self):
        from broker.router.wire import encode
        from broker.transport import strict_json
        serializer = strict_json()
        self.written = []
        self.queue = OutboundQueue(lambda msg: encode(serializer, msg), self.written.append,
                                   lambda queued: None)

    def test_a_result_with_nan_becomes_invalid_payload(self):
        """A RESULT carrying NaN (from a MessagePack callee) is an ERROR for the JSON caller."""
        self.queue.send(message.Result(1, args=[float("nan")]))
        self.assertEqual(len(self.written), 1)
        self.assertIn(errors.INVALID_PAYLOAD.encode(), self.written[0])
        self.assertNotIn(b"NaN", self.written[0])

    def test_an_event_with_infinity_is_dropped_and_others_go_on(self):
        """An EVENT carrying Infinity is not sent to the JSON peer; the next event is."""
        self.queue.send(message.Event(1, 1, args=[float("inf")]))
        self.queue.send(message.Event(1, 2, args=[1.5]))
        self.assertEqual(self.written, [b'[36,1,2,{},[1.5]]'])
