"""Progressive results of a request: stream text of one reactor turn merged, nothing lost, order kept."""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from broker.kernel.progress import MERGED_TEXT_LIMIT, ProgressBatch
from broker.kernel.session import KernelConversation
from broker.kernel.testing import FakeKernelChannels


def stream(seq, text, name="stdout"):
    return {"seq": seq, "msg_type": "stream", "content": {"name": name, "text": text},
            "metadata": {}, "parent_msg_id": "m1", "caller": None}


def other(seq, msg_type="display_data"):
    return {"seq": seq, "msg_type": msg_type, "content": {"data": {"text/plain": "x"}},
            "metadata": {}, "parent_msg_id": "m1", "caller": None}


class ProgressBatchTests(SynchronousTestCase):
    """ProgressBatch on a task.Clock: a turn ends when the clock runs what is due now."""

    def setUp(self):
        self.clock = task.Clock()
        self.sent = []
        self.batch = ProgressBatch(self.sent.append, self.clock)

    def test_stream_text_of_one_turn_goes_as_one(self):
        """Three lines given in one turn arrive as one output naming their seqs, at the turn's end."""
        originals = [stream(n, f"{n}\n") for n in (1, 2, 3)]
        for output in originals:
            self.batch.give(output)
        self.assertEqual(self.sent, [])
        self.clock.advance(0)
        (merged,) = self.sent
        self.assertEqual(merged["content"], {"name": "stdout", "text": "1\n2\n3\n"})
        self.assertEqual((merged["seq"], merged["coalesced"]), (3, [1, 3]))
        self.assertEqual([o["content"]["text"] for o in originals], ["1\n", "2\n", "3\n"])
        self.assertNotIn("coalesced", originals[-1])

    def test_a_lone_line_goes_unchanged(self):
        """A caller that keeps up gets each output as it is, one turn later at most."""
        for n in (1, 2):
            self.batch.give(stream(n, f"{n}\n"))
            self.clock.advance(0)
        self.assertEqual(self.sent, [stream(1, "1\n"), stream(2, "2\n")])

    def test_other_output_sends_what_waits_first(self):
        """A non-stream output goes at once, after the stream text given before it; order is kept."""
        self.batch.give(stream(1, "a"))
        self.batch.give(stream(2, "b"))
        self.batch.give(other(3))
        self.batch.give(stream(4, "c"))
        self.assertEqual([o["seq"] for o in self.sent], [2, 3])
        self.clock.advance(0)
        self.assertEqual([o["seq"] for o in self.sent], [2, 3, 4])
        self.assertEqual(self.sent[0]["coalesced"], [1, 2])

    def test_stdout_and_stderr_are_not_merged(self):
        """Text of another stream starts a new output."""
        for output in (stream(1, "a"), stream(2, "b", "stderr"), stream(3, "c", "stderr")):
            self.batch.give(output)
        self.clock.advance(0)
        self.assertEqual([(o["content"]["name"], o["content"]["text"]) for o in self.sent],
                         [("stdout", "a"), ("stderr", "bc")])

    def test_merged_text_is_bounded(self):
        """A merged output grows to MERGED_TEXT_LIMIT characters, then another starts."""
        line = "x" * (MERGED_TEXT_LIMIT // 4)
        for n in range(1, 10):
            self.batch.give(stream(n, line))
        self.clock.advance(0)
        self.assertEqual([o.get("coalesced") for o in self.sent], [[1, 4], [5, 8], None])
        self.assertTrue(all(len(o["content"]["text"]) <= MERGED_TEXT_LIMIT for o in self.sent))

    def test_flush_sends_at_once(self):
        """flush (the request ends) sends what waits without waiting for the turn's end."""
        self.batch.give(stream(1, "a"))
        self.batch.flush()
        self.assertEqual([o["seq"] for o in self.sent], [1])
        self.clock.advance(0)
        self.assertEqual(len(self.sent), 1)


class ConversationProgressTests(SynchronousTestCase):
    """A conversation with a clock batches its requests' progress; the result keeps every output."""

    def setUp(self):
        self.clock = task.Clock()
        self.published = []
        self.conversation = KernelConversation(
            "k1", lambda sub, output: self.published.append(output), clock=self.clock)
        self.channels = FakeKernelChannels(self.conversation.message_received)
        self.conversation.channels = self.channels

    def test_lines_of_one_turn_come_as_one_progress_and_every_line_stays_elsewhere(self):
        """100 lines arriving together: one progressive result; the topics and the final result keep 100."""
        progress = []
        d = self.conversation.request("shell", "execute_request", {"code": "x"}, None,
                                      progress.append)
        request = self.channels.sent[-1][1]
        self.channels.publish("status", {"execution_state": "busy"}, parent=request)
        for n in range(100):
            self.channels.publish("stream", {"name": "stdout", "text": f"{n}\n"}, parent=request)
        self.channels.reply("shell", request, "execute_reply", {"status": "ok"})
        self.channels.publish("status", {"execution_state": "idle"}, parent=request)
        _reply, outputs = self.successResultOf(d)
        self.assertEqual([o["msg_type"] for o in progress], ["status", "stream", "status"])
        self.assertEqual(progress[1]["content"]["text"], "".join(f"{n}\n" for n in range(100)))
        self.assertEqual(progress[1]["coalesced"], [2, 101])
        self.assertEqual(len(outputs), 102)
        self.assertEqual(len(self.published), 102)

    def test_progress_waiting_is_sent_before_the_kernel_fails_the_request(self):
        """Lines waiting for the turn's end still reach the caller when the request fails."""
        progress = []
        d = self.conversation.request("shell", "execute_request", {"code": "x"}, None,
                                      progress.append)
        request = self.channels.sent[-1][1]
        self.channels.publish("stream", {"name": "stdout", "text": "last words\n"}, parent=request)
        self.conversation.fail_all(ConnectionError("gone"))
        self.failureResultOf(d, ConnectionError)
        self.assertEqual([o["content"]["text"] for o in progress], ["last words\n"])

    def test_a_progress_callback_that_fails_stops_only_progress(self):
        """A caller whose progress fails at the turn's end gets no more progress; the request still ends."""
        def broken(output):
            raise RuntimeError("transport gone")
        d = self.conversation.request("shell", "execute_request", {"code": "x"}, None, broken)
        request = self.channels.sent[-1][1]
        self.channels.publish("stream", {"name": "stdout", "text": "a\n"}, parent=request)
        self.clock.advance(0)
        self.channels.reply("shell", request, "execute_reply", {"status": "ok"})
        self.channels.publish("status", {"execution_state": "idle"}, parent=request)
        self.successResultOf(d)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
