"""The client's reconnect logic on fakes: seq ordering, the feed, a cut execution, the session keeper.

No network and no reactor: the kernel is an :class:`OutputHistory` behind a
fake that answers ``outputs(since=…)`` and publishes each output to the
fake session's subscribers (or not: a test decides what the topics
deliver); sessions are fakes whose connection a test drops; time is a
``task.Clock``.
"""

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from broker.client.errors import ConnectionFailed, ConnectionLost, KernelDied, NotAuthorized, Timeout
from broker.client.execution import LOST_WAIT, Execution, Follower
from broker.client.feed import HOLE_WAIT, OutputFeed
from broker.client.ordering import OutputSequencer, gap_notice
from broker.client.reconnect import FIRST_DELAY, MAX_DELAY, SessionKeeper
from broker.kernel.history import OutputHistory


def out(seq, msg_type="stream", parent="p1", **more):
    return {"seq": seq, "msg_type": msg_type, "content": more.pop("content", {"text": f"{seq}\n"}),
            "metadata": {}, "parent_msg_id": parent, "caller": None, **more}


class OutputSequencerTests(SynchronousTestCase):
    """Each seq once, strictly in order, whatever order and repetition it comes in."""

    def setUp(self):
        self.delivered = []
        self.sequencer = OutputSequencer(self.delivered.append)

    def seqs(self):
        return [o["seq"] for o in self.delivered]

    def test_in_order_and_duplicates(self):
        """Outputs in order are delivered at once; one seen before is dropped."""
        for seq in (1, 2, 2, 3, 1):
            self.assertFalse(self.sequencer.accept(out(seq)))
        self.assertEqual(self.seqs(), [1, 2, 3])
        self.assertFalse(self.sequencer.waiting)

    def test_early_outputs_wait_for_the_ones_ahead(self):
        """An output that comes early waits (a hole) until those before it came."""
        self.sequencer.accept(out(3))
        self.sequencer.accept(out(2))
        self.assertEqual(self.seqs(), [])
        self.assertTrue(self.sequencer.waiting)
        self.sequencer.accept(out(1))
        self.assertEqual(self.seqs(), [1, 2, 3])
        self.assertFalse(self.sequencer.waiting)

    def test_coalesced_output_stands_for_its_range(self):
        """A merged stream output covering 2..4 is delivered once; the single ones it covers are dropped."""
        self.sequencer.accept(out(1))
        merged = out(4, content={"text": "2\n3\n4\n"}, coalesced=[2, 4])
        self.sequencer.accept(merged)
        for seq in (2, 3, 4):
            self.assertFalse(self.sequencer.accept(out(seq)))
        self.sequencer.accept(out(5))
        self.assertEqual(self.delivered, [out(1), merged, out(5)])
        self.assertEqual(self.sequencer.applied, 5)

    def test_partly_delivered_coalesced_output_asks_for_the_history(self):
        """A merged output whose first seqs were delivered already is not delivered again: fetch the rest."""
        for seq in (1, 2):
            self.sequencer.accept(out(seq))
        self.assertTrue(self.sequencer.accept(out(4, coalesced=[2, 4])))
        self.assertEqual(self.seqs(), [1, 2])

    def test_superseded_updates_are_skipped(self):
        """Seqs listed in superseded (older updates of the display) need no delivery."""
        self.sequencer.accept(out(1))
        newer = out(4, "update_display_data", superseded=[2, 3])
        self.sequencer.accept(newer)
        self.assertEqual(self.delivered, [out(1), newer])
        self.assertFalse(self.sequencer.accept(out(3, "update_display_data")))
        self.assertEqual(self.sequencer.applied, 4)

    def test_superseded_seq_does_not_hide_a_real_output(self):
        """A superseded seq already waiting as an output is delivered, not skipped."""
        self.sequencer.accept(out(3))
        self.sequencer.accept(out(4, "update_display_data", superseded=[2, 3]))
        self.sequencer.accept(out(1))
        self.assertEqual(self.seqs(), [1, 3, 4])

    def test_gap_marker_asks_for_the_history(self):
        """A slow connection's gap marker means fetch; one for seqs delivered already does not."""
        self.sequencer.accept(out(1))
        self.assertTrue(self.sequencer.accept({"msg_type": "gap", "from_seq": 2, "to_seq": 9, "seq": None}))
        self.assertFalse(self.sequencer.accept({"msg_type": "gap", "from_seq": 1, "to_seq": 1, "seq": None}))
        self.assertEqual(self.seqs(), [1])

    def test_history_page_fills_the_hole(self):
        """A page of outputs(since=applied) fills in what the topics did not bring; True while there may be more."""
        self.sequencer.accept(out(5))
        more = self.sequencer.accept_page({"first_seq": 1, "last_seq": 6, "complete": True,
                                           "outputs": [out(1), out(2), out(3)]})
        self.assertTrue(more)
        more = self.sequencer.accept_page({"first_seq": 1, "last_seq": 6, "complete": True,
                                           "outputs": [out(4), out(5), out(6)]})
        self.assertFalse(more)
        self.assertEqual(self.seqs(), [1, 2, 3, 4, 5, 6])

    def test_incomplete_history_is_a_gap_notice(self):
        """complete: false gives a gap notice for the seqs the history lost, then the rest."""
        self.sequencer.accept(out(1))
        self.sequencer.accept_page({"first_seq": 5, "last_seq": 6, "complete": False,
                                    "outputs": [out(5), out(6)]})
        self.assertEqual(self.delivered, [out(1), gap_notice(2, 4), out(5), out(6)])
        self.assertEqual(self.delivered[1]["lost"], True)

    def test_gap_notice_leaves_out_what_the_topics_brought(self):
        """Outputs held before the history's start are delivered; only the seqs nobody has are lost."""
        self.sequencer.accept(out(3))
        self.sequencer.accept_page({"first_seq": 6, "last_seq": 6, "complete": False, "outputs": [out(6)]})
        self.assertEqual(self.delivered, [gap_notice(1, 2), out(3), gap_notice(4, 5), out(6)])

    def test_start_at(self):
        """start_at(seq) skips what came before (a watch from now on)."""
        self.sequencer.accept(out(2))
        self.sequencer.accept(out(4))
        self.sequencer.start_at(3)
        self.assertEqual(self.seqs(), [4])


# -- fakes of the client and the service ------------------------------------------------------


class FakeSubscription:
    def __init__(self, session, handler, topic):
        self.session, self.handler, self.topic, self.active = session, handler, topic, True

    def unsubscribe(self):
        self.active = False
        self.session.subscriptions.remove(self)


class FakeSession:
    ids = iter(range(100, 1000))

    def __init__(self):
        self.session_id = next(self.ids)
        self.subscriptions = []
        self.attached = True

    def is_attached(self):
        return self.attached

    def subscribe(self, handler, topic, options=None):
        subscription = FakeSubscription(self, handler, topic)
        self.subscriptions.append(subscription)
        return defer.succeed(subscription)


class FakeKeeper:
    """A SessionKeeper whose test says when the connection drops and comes back."""

    def __init__(self):
        self.session = FakeSession()
        self.reconnects = True
        self.listeners = []
        self.waiting = []

    def joined(self):
        if self.session is not None:
            return defer.succeed(self.session)
        d = defer.Deferred()
        self.waiting.append(d)
        return d

    def add_listener(self, rejoined, lost):
        self.listeners.append((rejoined, lost))
        return (rejoined, lost)

    def remove_listener(self, listener):
        if listener in self.listeners:
            self.listeners.remove(listener)

    def drop(self):
        self.session.attached = False
        self.session = None

    def rejoin(self):
        self.session = FakeSession()
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(self.session)
        for rejoined, _ in list(self.listeners):
            rejoined(self.session)


class FakeClient:
    def __init__(self):
        self.keeper = FakeKeeper()
        self.reactor = task.Clock()
        self.timeout = 60
        self.models = [{"id": "k", "execution_state": "idle"}]

    def kernels(self):
        return defer.succeed(self.models)


class FakeKernel:
    """A kernel whose output is an OutputHistory; ``emit`` numbers an output and publishes it."""

    id = "k"

    def __init__(self, history=None):
        self.client = FakeClient()
        self.history = history or OutputHistory()
        self.last_seq = 0
        self.fetches = []
        self.replies = {}
        self.interrupted = 0
        self.claims = set()

    def emit(self, output, publish=True):
        output = self.history.append(dict(output, seq=None))
        if publish:
            self.publish(output)
        return output

    def publish(self, output):
        session = self.client.keeper.session
        for subscription in list(session.subscriptions if session else []):
            subscription.handler(**output)

    def outputs(self, since=0, limit=None):
        self.fetches.append(since)
        return defer.succeed(self.history.since(since, limit))

    def reply(self, msg_id):
        return defer.succeed(self.replies[msg_id])

    def interrupt(self):
        self.interrupted += 1
        return defer.succeed(None)

    def saw(self, output):
        if isinstance(output.get("seq"), int):
            self.last_seq = max(self.last_seq, output["seq"])

    def claim(self, msg_id):
        self.claims.add(msg_id)

    def claimed(self, msg_id):
        return msg_id in self.claims


def stream(text, parent="p1", session=None):
    return {"msg_type": "stream", "content": {"name": "stdout", "text": text}, "metadata": {},
            "parent_msg_id": parent, "caller": {"session": session} if session else None}


class OutputFeedTests(SynchronousTestCase):
    """Topics plus history, in order and once each, and again after a reconnect."""

    def setUp(self):
        self.kernel = FakeKernel()
        self.delivered = []

    def feed(self, since=0):
        feed = OutputFeed(self.kernel, self.delivered.append, since)
        self.successResultOf(feed.start())
        self.addCleanup(feed.stop)
        return feed

    def texts(self):
        return "".join(o["content"].get("text", "") for o in self.delivered)

    def test_catches_up_then_follows_the_topics(self):
        """What came before the subscription comes from the history, then the topics; no repeats."""
        self.kernel.emit(stream("a"))
        self.feed()
        self.kernel.emit(stream("b"))
        self.assertEqual(self.texts(), "ab")
        self.assertEqual([o["seq"] for o in self.delivered], [1, 2])

    def test_from_now_skips_the_past(self):
        """since=None starts after the kernel's last seq."""
        self.kernel.emit(stream("old"))
        self.feed(since=None)
        self.kernel.emit(stream("new"))
        self.assertEqual(self.texts(), "new")

    def test_gap_marker_fetches_the_range_from_history(self):
        """A gap marker on the topic gets the missing outputs from outputs(since=…), in order, once."""
        self.feed()
        self.kernel.emit(stream("1"))
        for text in "234":
            self.kernel.emit(stream(text), publish=False)  # dropped for a slow connection...
        self.kernel.emit(stream("5"))  # ...this one waits for them
        self.assertEqual(self.texts(), "1")
        self.kernel.publish({"msg_type": "gap", "from_seq": 2, "to_seq": 4, "seq": None, "content": {}})
        self.assertEqual(self.texts(), "12345")
        self.assertEqual([o["seq"] for o in self.delivered], [1, 2, 3, 4, 5])

    def test_a_hole_that_does_not_fill_is_fetched(self):
        """An output waiting for one that never comes on the topic is fetched after HOLE_WAIT."""
        self.feed()
        self.kernel.emit(stream("1"), publish=False)
        self.kernel.emit(stream("2"))
        self.assertEqual(self.texts(), "")
        self.kernel.client.reactor.advance(HOLE_WAIT)
        self.assertEqual(self.texts(), "12")

    def test_coalesced_and_superseded_on_the_topic(self):
        """A coalesced stream and an update naming superseded ones account for every seq."""
        self.feed()
        first = self.kernel.emit(stream("a"), publish=False)
        second = self.kernel.emit(stream("b"), publish=False)
        self.kernel.publish(dict(second, content={"name": "stdout", "text": "ab"},
                                 coalesced=[first["seq"], second["seq"]]))
        update = {"msg_type": "update_display_data", "content": {"transient": {"display_id": "d"}},
                  "parent_msg_id": "p1"}
        older = self.kernel.emit(update, publish=False)
        newer = self.kernel.emit(update, publish=False)
        self.kernel.publish(dict(newer, superseded=[older["seq"]]))
        self.assertEqual([(o["msg_type"], o["seq"]) for o in self.delivered],
                         [("stream", 2), ("update_display_data", 4)])
        self.kernel.client.reactor.advance(HOLE_WAIT)
        self.assertEqual(len(self.delivered), 2)

    def test_reconnect_subscribes_again_and_catches_up(self):
        """After a reconnect: subscribed on the new session, what was missed comes once, in order."""
        feed = self.feed()
        self.kernel.emit(stream("a"))
        self.kernel.client.keeper.drop()
        self.kernel.emit(stream("b"))  # while disconnected: nobody hears it
        self.kernel.client.keeper.rejoin()
        self.kernel.emit(stream("c"))
        self.assertEqual(self.texts(), "abc")
        self.assertEqual(len(self.kernel.client.keeper.session.subscriptions), 2)
        self.assertEqual(self.kernel.fetches[-1], 1)
        self.assertEqual(feed.sequencer.applied, 3)

    def test_history_lost_while_disconnected_is_a_gap_notice(self):
        """If the history dropped what was missed, the feed delivers a gap notice for it, not silence."""
        self.kernel.history = OutputHistory(max_messages=2)
        self.feed()
        self.kernel.emit(stream("a"))
        self.kernel.client.keeper.drop()
        for text in "bcde":
            self.kernel.emit(stream(text))
        self.kernel.client.keeper.rejoin()
        self.assertEqual([(o["msg_type"], o.get("lost")) for o in self.delivered],
                         [("stream", None), ("gap", True), ("stream", None), ("stream", None)])
        self.assertEqual((self.delivered[1]["from_seq"], self.delivered[1]["to_seq"]), (2, 3))
        self.assertEqual(self.texts(), "ade")

    def test_stop_unsubscribes_in_a_later_turn(self):
        """stop() delivers nothing more at once and unsubscribes on the next turn (Autobahn skips handlers otherwise)."""
        feed = self.feed()
        stopped = feed.stop()
        self.kernel.emit(stream("late"))
        self.assertEqual(self.delivered, [])
        self.assertNoResult(stopped)
        self.kernel.client.reactor.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(self.kernel.client.keeper.session.subscriptions, [])


class FollowerTests(SynchronousTestCase):
    """An execution cut by the drop is found and followed to its end on the kernel's output."""

    def setUp(self):
        self.kernel = FakeKernel()
        self.seen = []
        self.execution = Execution(self.kernel, self.seen.append, None)
        self.execution.code = "work()"
        self.execution.session_id = 7

    def follow(self):
        self.kernel.client.keeper.drop()
        done = Follower(self.execution).follow()
        self.kernel.client.keeper.rejoin()
        return done

    def run_cell(self, parent, session, code="work()", lines="xy"):
        caused = {"parent_msg_id": parent, "caller": {"session": session}}
        self.kernel.emit({"msg_type": "status", "content": {"execution_state": "busy"}, **caused})
        self.kernel.emit({"msg_type": "execute_input", "content": {"code": code, "execution_count": 3},
                          **caused})
        for text in lines:
            self.kernel.emit(stream(text, parent, session))
        self.kernel.replies[parent] = {"msg_id": parent, "status": "ok", "execution_count": 3,
                                       "reply": {"status": "ok", "execution_count": 3}, "truncated": False}
        self.kernel.emit({"msg_type": "status", "content": {"execution_state": "idle"}, **caused})

    def test_known_execution_continues_after_its_last_progress(self):
        """With the msg_id from progress, on_output gets the rest once; the result comes from reply()."""
        self.execution.take(self.kernel.emit({"msg_type": "status", "parent_msg_id": "mine",
                                              "content": {"execution_state": "busy"}}))
        self.kernel.emit(stream("a", "mine"))  # after the drop
        done = self.follow()
        self.kernel.emit(stream("b", "mine"))
        self.kernel.emit(stream("other", "theirs"))
        self.kernel.replies["mine"] = {"msg_id": "mine", "status": "ok", "execution_count": 1,
                                       "reply": {"status": "ok"}, "truncated": False}
        self.kernel.emit({"msg_type": "status", "parent_msg_id": "mine", "content": {"execution_state": "idle"}})
        result = self.successResultOf(done)
        self.assertEqual([o["seq"] for o in self.seen], [1, 2, 3, 5])
        self.assertEqual((result["status"], result["msg_id"], result["reply"], result["omitted"]),
                         ("ok", "mine", {"status": "ok"}, None))
        self.assertEqual([o["seq"] for o in result["outputs"]], [1, 2, 3, 5])

    def test_unknown_execution_is_found_by_session_and_code(self):
        """Without progress: the first execute_input of the old session with our code not claimed already."""
        self.run_cell("claimed-before", 7)
        self.kernel.claim("claimed-before")
        self.run_cell("other-session", 8)
        self.run_cell("other-code", 7, code="something()")
        done = self.follow()
        self.run_cell("mine", 7)
        result = self.successResultOf(done)
        self.assertEqual(result["msg_id"], "mine")
        self.assertEqual({o["parent_msg_id"] for o in self.seen}, {"mine"})
        self.assertEqual([o["msg_type"] for o in self.seen],
                         ["status", "execute_input", "stream", "stream", "status"])
        self.assertTrue(self.kernel.claimed("mine"))

    def test_request_never_run_is_connection_lost(self):
        """Not found while the kernel is idle and quiet for LOST_WAIT: the request was lost, ConnectionLost."""
        done = self.follow()
        self.assertNoResult(done)
        self.kernel.client.reactor.advance(LOST_WAIT)
        self.failureResultOf(done, ConnectionLost)

    def test_busy_kernel_keeps_it_waiting(self):
        """A busy kernel may still run it (queued behind another cell): no verdict yet."""
        self.kernel.client.models = [{"id": "k", "execution_state": "busy"}]
        done = self.follow()
        self.kernel.client.reactor.advance(LOST_WAIT)
        self.assertNoResult(done)
        self.kernel.client.models = [{"id": "k", "execution_state": "idle"}]
        self.run_cell("mine", 7)
        self.assertEqual(self.successResultOf(done)["msg_id"], "mine")

    def test_kernel_death_while_running_is_kernel_died(self):
        """The kernel dying under the followed execution fails it with KernelDied."""
        self.execution.take(self.kernel.emit({"msg_type": "status", "parent_msg_id": "mine",
                                              "content": {"execution_state": "busy"}}))
        done = self.follow()
        self.kernel.emit({"msg_type": "status", "parent_msg_id": None,
                          "content": {"execution_state": "dead", "reason": "killed"}})
        self.assertIn("killed", str(self.failureResultOf(done, KernelDied).value))

    def test_deadline_interrupts_and_times_out(self):
        """Past the call's timeout a running followed execution is interrupted; execute fails with Timeout."""
        self.execution.deadline = 10
        self.execution.take(self.kernel.emit({"msg_type": "status", "parent_msg_id": "mine",
                                              "content": {"execution_state": "busy"}}))
        done = self.follow()
        self.kernel.client.reactor.advance(10)
        self.failureResultOf(done, Timeout)
        self.assertEqual(self.kernel.interrupted, 1)

    def test_callback_error_cancels_and_interrupts(self):
        """Canceling a followed execution (an on_output error does) interrupts the kernel."""
        self.execution.take(self.kernel.emit({"msg_type": "status", "parent_msg_id": "mine",
                                              "content": {"execution_state": "busy"}}))
        done = self.follow()
        done.cancel()
        self.failureResultOf(done, defer.CancelledError)
        self.assertEqual(self.kernel.interrupted, 1)


class KeptSession:
    """A joined session for SessionKeeper: ``close()`` is the connection dropping."""

    def __init__(self, authid, session_id):
        self.authid, self.session_id = authid, session_id
        self.attached = True
        self.closed = defer.Deferred()
        self.left = False

    def is_attached(self):
        return self.attached

    def when_closed(self):
        d = defer.Deferred()
        self.closed.addCallback(lambda _: d.callback(None))
        return d

    def close(self):
        self.attached = False
        self.closed.callback(None)

    def leave(self):
        self.left = True
        self.close()


class SessionKeeperTests(SynchronousTestCase):
    """Reconnecting with back-off under the same authid; giving up; never after close()."""

    def setUp(self):
        self.clock = task.Clock()
        self.attempts = []  # (time, authid, Deferred)
        self.first = KeptSession("user-7", 1)
        self.keeper = SessionKeeper(self.first, self.clock, self.reopen, reconnect_timeout=10)

    def reopen(self, authid, timeout):
        d = defer.Deferred()
        self.attempts.append((self.clock.seconds(), authid, d))
        return d

    def refuse(self):
        self.attempts[-1][2].errback(ConnectionFailed("refused"))

    def test_backs_off_then_rejoins_under_the_same_authid(self):
        """Attempts after 0.1, 0.2, 0.4 … s; the new session has the first one's authid; waiters get it."""
        self.first.close()
        waiting = self.keeper.joined()
        for _ in range(4):
            self.clock.advance(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds())
            if len(self.attempts) < 4:
                self.refuse()
        times = [round(t, 3) for t, _, _ in self.attempts]
        self.assertEqual(times, [0.1, 0.3, 0.7, 1.5])
        self.assertEqual({authid for _, authid, _ in self.attempts}, {"user-7"})
        second = KeptSession("user-7", 2)
        rejoined = []
        self.keeper.add_listener(rejoined.append, None)
        self.attempts[-1][2].callback(second)
        self.assertIs(self.successResultOf(waiting), second)
        self.assertEqual(rejoined, [second])
        self.assertIs(self.successResultOf(self.keeper.joined()), second)

    def test_delay_is_capped(self):
        """The wait between attempts grows to MAX_DELAY and no further."""
        self.keeper.reconnect_timeout = 60
        self.first.close()
        for _ in range(8):
            self.clock.advance(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds())
            self.refuse()
        gaps = [b[0] - a[0] for a, b in zip(self.attempts, self.attempts[1:])]
        self.assertEqual(max(gaps), MAX_DELAY)

    def test_gives_up_after_reconnect_timeout(self):
        """No session within reconnect_timeout: waiters and later calls fail with ConnectionLost."""
        self.first.close()
        waiting = self.keeper.joined()
        lost = []
        self.keeper.add_listener(None, lost.append)
        while self.clock.getDelayedCalls():
            self.clock.advance(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds())
            if self.attempts and not self.attempts[-1][2].called:
                self.refuse()
        self.assertLessEqual(self.clock.seconds(), 10)
        self.assertIn("within 10 s", str(self.failureResultOf(waiting, ConnectionLost).value))
        self.assertEqual(len(lost), 1)
        self.failureResultOf(self.keeper.joined(), ConnectionLost)
        self.assertFalse(self.keeper.reconnects)

    def test_refused_token_gives_up_at_once(self):
        """A new session refused (the token changed) is not retried."""
        self.first.close()
        self.clock.advance(FIRST_DELAY)
        self.attempts[-1][2].errback(NotAuthorized("wrong ticket"))
        self.failureResultOf(self.keeper.joined(), ConnectionLost)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_close_never_reconnects(self):
        """close() leaves; the drop that follows is not replaced."""
        closed = self.keeper.close(5)
        self.successResultOf(closed)
        self.assertTrue(self.first.left)
        self.assertEqual((self.attempts, self.clock.getDelayedCalls()), ([], []))
        self.failureResultOf(self.keeper.joined(), ConnectionLost)

    def test_close_while_reconnecting_stops_it(self):
        """close() during the back-off cancels it; nothing more is attempted."""
        self.first.close()
        waiting = self.keeper.joined()
        self.successResultOf(self.keeper.close(5))
        self.failureResultOf(waiting, ConnectionLost)
        self.assertEqual((self.attempts, self.clock.getDelayedCalls()), ([], []))

    def test_without_reopen_a_drop_is_final(self):
        """reconnect=False (no reopen): the first drop fails what waits, at once."""
        keeper = SessionKeeper(KeptSession("a", 1), self.clock)
        keeper.session.close()
        self.failureResultOf(keeper.joined(), ConnectionLost)
        self.assertEqual(self.clock.getDelayedCalls(), [])
