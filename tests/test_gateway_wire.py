"""The kernel WebSocket's framings, its bounded send queue and its replay trails, without a service."""

import json

from twisted.trial.unittest import SynchronousTestCase

from broker.gateway import replay, wire
from broker.gateway.sendqueue import SendQueue


class FramingTests(SynchronousTestCase):
    """Legacy JSON for GatewayClient, v1 binary for direct clients."""

    def test_legacy_has_channel_and_no_buffers(self):
        """A legacy frame is JSON text with channel, msg_id and msg_type, its buffers left out."""
        msg = wire.make("iopub", "stream", {"name": "stdout", "text": "hi"}, {"msg_id": "p"}, "s",
                        buffers=[b"\x00\x01"])
        decoded = json.loads(wire.encode_legacy(msg))
        self.assertEqual((decoded["channel"], decoded["msg_type"], decoded["buffers"]),
                         ("iopub", "stream", []))
        self.assertEqual(decoded["parent_header"], {"msg_id": "p"})
        self.assertEqual(decoded["msg_id"], decoded["header"]["msg_id"])

    def test_v1_round_trip(self):
        """A v1 frame decodes to the same channel, header, content and buffers."""
        msg = wire.make("shell", "execute_request", {"code": "2+3"}, {}, "s", buffers=[b"abc"])
        back = wire.decode_v1(wire.encode_v1(msg))
        self.assertEqual((back["channel"], back["header"], back["content"], back["buffers"]),
                         ("shell", msg["header"], {"code": "2+3"}, [b"abc"]))

    def test_bad_frames(self):
        """Frames that are no Jupyter message are refused; a missing channel means shell."""
        for payload in (b"not json", b"[]", b'{"header": {}, "channel": "shell"}',
                        b'{"header": {"msg_type": "x"}, "channel": "nowhere"}'):
            self.assertRaises(wire.BadMessage, wire.decode_legacy, payload)
        self.assertRaises(wire.BadMessage, wire.decode_v1, b"\x05" + b"\x00" * 7)
        msg = wire.decode_legacy(b'{"header": {"msg_type": "kernel_info_request"}}')
        self.assertEqual(msg["channel"], "shell")


class SendQueueTests(SynchronousTestCase):
    """A client that does not read gets its messages or a closed socket, never unbounded buffering."""

    def setUp(self):
        self.written, self.overflows = [], []
        self.queue = SendQueue(lambda f, b: self.written.append(f), self.overflows.append, limit=10)

    def test_writes_at_once_and_in_order_after_a_pause(self):
        """While paused frames wait; on resume they go out in order."""
        self.queue.send(b"a", False)
        self.queue.pauseProducing()
        self.queue.send(b"bb", False)
        self.queue.send(b"cc", False)
        self.assertEqual(self.written, [b"a"])
        self.queue.resumeProducing()
        self.assertEqual((self.written, self.queue.queued), ([b"a", b"bb", b"cc"], 0))

    def test_overflow_closes(self):
        """Past the limit the waiting frames are dropped and the socket is told to close, once."""
        self.queue.pauseProducing()
        for _ in range(6):
            self.queue.send(b"xx", False)
        self.assertEqual(self.overflows, [12])
        self.queue.resumeProducing()
        self.assertEqual(self.written, [])


class TrailTests(SynchronousTestCase):
    """What a session_id saw and asked is kept, bounded."""

    def test_bounded(self):
        """Old trails and old parents go first; a trail comes back by its key."""
        trails = replay.SessionTrails(limit=2)
        first = trails.get("u", "k", "s1")
        first.saw(5)
        self.assertIs(trails.get("u", "k", "s1"), first)
        trails.get("u", "k", "s2")
        trails.get("u", "k", "s3")
        self.assertIsNot(trails.get("u", "k", "s1"), first)
        self.assertIsNot(trails.get("u", "k", ""), trails.get("u", "k", ""))
        for i in range(replay.MAX_PARENTS + 5):
            first.remember(str(i), {"msg_id": f"c{i}"})
        self.assertEqual(len(first.parents), replay.MAX_PARENTS)
        self.assertEqual(first.parent_of("0"), {"msg_id": "0"})
        self.assertEqual(first.parent_of(str(replay.MAX_PARENTS + 4)),
                         {"msg_id": f"c{replay.MAX_PARENTS + 4}"})
