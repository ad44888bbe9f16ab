"""The kernel host's memory of recent execute replies, and ``webkernel.kernel.<id>.reply``.

RecentReplies on its own; KernelConversation over FakeKernelChannels; the
procedure through the router (MemoryRouter), as in ``test_kernel_host_units``.
"""

from autobahn.wamp import message
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.kernel import uris
from broker.kernel.replies import NoSuchRequest, RecentReplies
from broker.kernel.supervisor import KernelDied
from tests.test_kernel_host_units import (
    ConversationTestCase,
    KernelHostTestCase,
    run_execute,
    sent,
)


class RecentRepliesTests(SynchronousTestCase):
    """Bounded in replies and in bytes per reply."""

    def test_keeps_the_newest(self):
        """Beyond max_replies the oldest reply is forgotten."""
        replies = RecentReplies(max_replies=2)
        for n in range(3):
            replies.record(f"m{n}", {"status": "ok", "execution_count": n})
        self.assertIsNone(replies.get("m0"))
        self.assertEqual(replies.get("m2"), {"msg_id": "m2", "status": "ok", "execution_count": 2,
                                             "reply": {"status": "ok", "execution_count": 2},
                                             "truncated": False})
        self.assertEqual(len(replies), 2)

    def test_a_large_reply_is_kept_without_its_bulk(self):
        """A reply over max_bytes loses user_expressions and payload and is marked truncated."""
        replies = RecentReplies(max_bytes=1000)
        replies.record("m", {"status": "ok", "execution_count": 1,
                             "user_expressions": {"x": "y" * 5000}, "payload": []})
        self.assertEqual(replies.get("m")["reply"], {"status": "ok", "execution_count": 1})
        self.assertTrue(replies.get("m")["truncated"])

    def test_a_huge_error_keeps_only_its_essentials(self):
        """An error reply still too large keeps status, count, ename and the start of evalue."""
        replies = RecentReplies(max_bytes=2000)
        replies.record("m", {"status": "error", "execution_count": 4, "ename": "ValueError",
                             "evalue": "v" * 5000, "traceback": ["t" * 5000]})
        kept = replies.get("m")["reply"]
        self.assertEqual(sorted(kept), ["ename", "evalue", "execution_count", "status"])
        self.assertEqual(len(kept["evalue"]), 1024)


class ConversationReplyTests(ConversationTestCase):
    """Every execute_reply is remembered; reply_for waits for a pending one."""

    def test_execute_reply_is_remembered(self):
        """After an execute, reply_for(msg_id) gives its reply content."""
        d, request = self.execute()
        run_execute(self.channels, request)
        self.successResultOf(d)
        entry = self.successResultOf(self.conversation.reply_for(request["header"]["msg_id"]))
        self.assertEqual((entry["status"], entry["execution_count"], entry["reply"]["user_expressions"]),
                         ("ok", 1, {}))

    def test_reply_for_a_pending_request_waits_for_it(self):
        """reply_for a request still running fires once its execute_reply arrives."""
        d, request = self.execute()
        waiting = self.conversation.reply_for(request["header"]["msg_id"])
        self.assertNoResult(waiting)
        run_execute(self.channels, request, status="error")
        self.assertEqual(self.successResultOf(waiting)["reply"]["ename"], "ZeroDivisionError")

    def test_unknown_msg_id(self):
        """A msg_id neither kept nor pending fails with NoSuchRequest."""
        self.failureResultOf(self.conversation.reply_for("nope"), NoSuchRequest)

    def test_kernel_death_fails_the_waiters(self):
        """If the kernel dies, whoever waits for a reply gets the death."""
        d, request = self.execute()
        waiting = self.conversation.reply_for(request["header"]["msg_id"])
        self.conversation.fail_all(Failure(KernelDied("gone")))
        self.failureResultOf(waiting, KernelDied)
        self.failureResultOf(d, KernelDied)


class ReplyProcedureTests(KernelHostTestCase):
    """webkernel.kernel.<id>.reply through the router."""

    def test_reply_and_no_such_request(self):
        """reply(msg_id) answers {msg_id, status, execution_count, reply, truncated}; unknown is no_such_request."""
        kernel_id = self.start()["id"]
        self.kernel_call(kernel_id, "execute", "1")
        request = sent(self.channels.last, "execute_request")
        run_execute(self.channels.last, request)
        self.settle()
        msg_id = request["header"]["msg_id"]
        entry = self.result(uris.kernel_procedure(kernel_id, "reply"), msg_id)
        self.assertEqual((entry["msg_id"], entry["status"], entry["execution_count"], entry["truncated"]),
                         (msg_id, "ok", 1, False))
        error = self.error(uris.kernel_procedure(kernel_id, "reply"), "0" * 32)
        self.assertEqual(error.error, errors.NO_SUCH_REQUEST)
        self.assertIn("keeps the last 256", error.args[0])
        bad = self.error(uris.kernel_procedure(kernel_id, "reply"), 5)
        self.assertEqual(bad.error, "wamp.error.invalid_argument")
        self.assertIsInstance(bad, message.Error)
