"""The kernel's ZeroMQ channels: timing logic on a fake clock, then a real ipykernel.

The unit tests drive HeartbeatMonitor and IOPubNudge with ``task.Clock`` and
fake ping/send functions. The integration tests launch a real ipykernel
through KernelLauncher, talk to it through KernelChannels on trial's reactor,
wait with bounded timeouts only, and kill every kernel in cleanup.
"""

import os
import shutil
import stat
import tempfile
import uuid

import pytest
import psutil
from jupyter_client.session import Session
from twisted.internet import defer, reactor, task
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from broker.kernel.errors import (
    ChannelsClosed,
    InvalidKernelId,
    KernelNotReady,
    NoSuchKernelSpec,
    UnknownChannel,
    UnsignedSession,
)
from broker.kernel.heartbeat import HeartbeatMonitor
from broker.kernel.interfaces import IKernelChannels, IKernelLauncher
from broker.kernel.launcher import KernelExit, KernelLauncher
from broker.kernel.nudge import IOPubNudge
from broker.kernel.testing import FakeKernelChannels
from broker.kernel.zmq_channels import (
    REPLAY_WINDOW, KernelChannels, make_zmq_factory, session_for,
)

TIMEOUT = 15


class FakePinger:
    """A ping function whose Deferreds the test answers (or lets time out)."""

    def __init__(self):
        self.pings = []

    def __call__(self):
        d = defer.Deferred()
        self.pings.append(d)
        return d

    def answer(self):
        self.pings[-1].callback(b"pong")


class HeartbeatMonitorTests(TestCase):
    """HeartbeatMonitor on a task.Clock with a fake ping."""

    def setUp(self):
        self.clock = task.Clock()
        self.pinger = FakePinger()
        self.lost = []
        self.monitor = HeartbeatMonitor(
            self.clock, self.pinger, lambda: self.lost.append(self.clock.seconds()),
            interval=2.0, timeout=1.0, max_misses=3,
        )

    def test_answered_pings_keep_the_kernel_alive(self):
        """A kernel that answers every ping is pinged once per interval and never reported lost."""
        self.monitor.start()
        for _ in range(10):
            self.pinger.answer()
            self.clock.advance(2.0)
        self.assertEqual(len(self.pinger.pings), 11)
        self.assertEqual((self.lost, self.monitor.misses), ([], 0))

    def test_consecutive_misses_report_lost_once(self):
        """Three unanswered pings in a row call on_heartbeat_lost once, then the monitor stops."""
        self.monitor.start()
        self.clock.pump([1.0] * 10)
        self.assertEqual(self.lost, [5.0])
        self.assertEqual(len(self.pinger.pings), 3)
        self.assertFalse(self.monitor.running)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_an_answer_resets_the_miss_count(self):
        """Misses must be consecutive: one answer in between starts the count again."""
        self.monitor.start()
        self.clock.pump([1.0] * 4)  # two misses
        self.assertEqual(self.monitor.misses, 2)
        self.pinger.answer()
        self.assertEqual(self.monitor.misses, 0)
        self.clock.pump([1.0] * 5)
        self.assertEqual(self.lost, [])

    def test_timeout_equal_to_interval_pings_again_at_once(self):
        """With timeout == interval a miss is counted and the next ping goes out at the same moment."""
        monitor = HeartbeatMonitor(self.clock, self.pinger, lambda: self.lost.append(1),
                                   interval=1.0, timeout=1.0, max_misses=2)
        monitor.start()
        self.clock.advance(1.0)
        self.assertEqual((monitor.misses, len(self.pinger.pings)), (1, 2))
        self.clock.advance(1.0)
        self.assertEqual(self.lost, [1])

    def test_stop_abandons_the_ping_in_flight(self):
        """stop() cancels the unanswered ping, counts no miss and leaves nothing scheduled."""
        self.monitor.start()
        self.monitor.stop()
        self.assertTrue(self.pinger.pings[0].called)
        self.assertEqual((self.monitor.misses, self.clock.getDelayedCalls()), (0, []))

    def test_a_ping_that_raises_is_a_miss(self):
        """A ping function that raises (channels closed) counts as a miss, not a crash."""
        def broken():
            raise ChannelsClosed("closed")
        monitor = HeartbeatMonitor(self.clock, broken, lambda: self.lost.append(1),
                                   interval=1.0, max_misses=2)
        monitor.start()
        self.clock.advance(1.0)
        self.assertEqual(self.lost, [1])

    def test_timeout_longer_than_interval_is_refused(self):
        """Pings may not overlap: a timeout above the interval is a ValueError."""
        self.assertRaises(ValueError, HeartbeatMonitor, self.clock, self.pinger, lambda: None,
                          interval=1.0, timeout=2.0)


class FakeSender:
    """Stands for ``send('shell', 'kernel_info_request', {})``: returns numbered message dicts."""

    def __init__(self):
        self.sent = []

    def __call__(self):
        msg = {"msg_id": f"req-{len(self.sent) + 1}", "msg_type": "kernel_info_request"}
        self.sent.append(msg)
        return msg


def reply_to(msg_id, content=None):
    return {"msg_type": "kernel_info_reply", "parent_header": {"msg_id": msg_id},
            "content": content or {"status": "ok"}}


STATUS = {"msg_type": "status", "parent_header": {}, "content": {"execution_state": "idle"}}


class IOPubNudgeTests(TestCase):
    """IOPubNudge on a task.Clock with a fake request sender."""

    def setUp(self):
        self.clock = task.Clock()
        self.sender = FakeSender()
        self.nudge = IOPubNudge(self.clock, self.sender, timeout=5.0, interval=0.5)
        self.result = []
        self.nudge.start().addBoth(self.result.append)

    def test_ready_once_shell_replied_and_iopub_delivered(self):
        """The reply alone is not enough; requests go on until iopub delivers, then the reply content fires."""
        self.assertTrue(self.nudge.message_received("shell", reply_to("req-1", {"status": "ok", "n": 1})))
        self.clock.advance(0.5)
        self.assertEqual((len(self.sender.sent), self.result), (2, []))
        self.assertFalse(self.nudge.message_received("iopub", STATUS))
        self.assertEqual(self.result, [{"status": "ok", "n": 1}])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_requests_come_soon_first_then_back_off_to_the_interval(self):
        """A fresh kernel's first status is usually lost to the slow joiner: ask again after 10 ms, doubling, never beyond the interval."""
        self.nudge.deferred.cancel()  # setUp's: only this test's nudge sends
        self.result[0].trap(defer.CancelledError)
        sender = FakeSender()
        nudge = IOPubNudge(self.clock, sender, timeout=5.0, interval=0.5)
        nudge.start()
        for gap in (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5):
            sent = len(sender.sent)
            self.clock.advance(gap - 0.0005)
            self.assertEqual(len(sender.sent), sent, f"sent before {gap} s passed")
            self.clock.advance(0.001)  # just past it (the next gap counts from here)
            self.assertEqual(len(sender.sent), sent + 1, f"nothing sent after {gap} s")
        nudge.deferred.cancel()
        nudge.deferred.addErrback(lambda f: f.trap(defer.CancelledError))

    def test_iopub_first_then_reply(self):
        """An iopub message before the reply counts: the reply then finishes the handshake."""
        self.nudge.message_received("iopub", STATUS)
        self.nudge.message_received("shell", reply_to("req-1"))
        self.assertEqual(self.result, [{"status": "ok"}])

    def test_late_replies_are_consumed_and_others_are_not(self):
        """Replies to any of the nudge's requests are consumed, even after it finished; others pass."""
        self.clock.advance(0.5)
        self.nudge.message_received("iopub", STATUS)
        self.nudge.message_received("shell", reply_to("req-1"))
        self.assertTrue(self.nudge.message_received("shell", reply_to("req-2")))
        self.assertFalse(self.nudge.message_received("shell", reply_to("someone-else")))
        self.assertEqual(self.nudge.request_ids, set())

    def test_timeout_says_what_is_missing(self):
        """After the timeout the Deferred fails with KernelNotReady naming the silent channel, and sending stops."""
        self.nudge.message_received("shell", reply_to("req-1"))
        self.clock.pump([0.5] * 12)
        failure = self.result[0]
        failure.trap(KernelNotReady)
        self.assertIn("no message on iopub", str(failure.value))
        self.assertNotIn("shell", str(failure.value))
        self.assertEqual((len(self.sender.sent), self.clock.getDelayedCalls()), (10, []))

    def test_extra_conditions_are_awaited_and_named(self):
        """A nudge with a condition fires only once it is met, and its timeout names it when not."""
        nudge = IOPubNudge(self.clock, self.sender, timeout=5.0, conditions=["handshake on stdin"])
        result = []
        nudge.start().addBoth(result.append)
        nudge.message_received("iopub", STATUS)
        nudge.message_received("shell", reply_to(self.sender.sent[-1]["msg_id"]))
        self.assertEqual(result, [])
        nudge.condition_met("handshake on stdin")
        self.assertEqual(result, [{"status": "ok"}])
        late = IOPubNudge(self.clock, self.sender, timeout=5.0, conditions=["handshake on stdin"])
        late.start().addErrback(result.append)
        self.clock.advance(5.0)
        self.assertIn("no handshake on stdin", str(result[-1].value))

    def test_cancel_stops_sending(self):
        """Cancelling the Deferred stops the requests and the deadline."""
        self.nudge.deferred.cancel()
        self.result[0].trap(defer.CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_send_that_raises_fails_the_nudge(self):
        """If a request cannot be sent, the nudge fails with that error at once."""
        def broken():
            raise ChannelsClosed("closed")
        result = []
        IOPubNudge(self.clock, broken).start().addErrback(result.append)
        result[0].trap(ChannelsClosed)


class FakeKernelChannelsTests(TestCase):
    """The shipped test double behaves like the real channels."""

    def test_provides_the_interface(self):
        """FakeKernelChannels provides IKernelChannels."""
        verifyObject(IKernelChannels, FakeKernelChannels(lambda c, m: None))

    def test_reply_is_shaped_like_a_deserialized_message(self):
        """A reply arrives as Session.deserialize shapes it, its parent the request."""
        received = []
        channels = FakeKernelChannels(lambda c, m: received.append((c, m)))
        request = channels.send("shell", "execute_request", {"code": "1"})
        channels.reply("shell", request, "execute_reply", {"status": "ok"})
        channel, msg = received[0]
        self.assertEqual((channel, msg["msg_type"], msg["content"]), ("shell", "execute_reply", {"status": "ok"}))
        self.assertEqual(msg["parent_header"]["msg_id"], request["msg_id"])
        self.assertEqual(msg["buffers"], [])


class KernelChannelsArgumentTests(TestCase):
    """KernelChannels refuses what it cannot work with, before opening any socket."""

    def test_a_session_without_key_is_refused(self):
        """Every kernel message must be signed: a Session with no key is UnsignedSession."""
        self.assertRaises(UnsignedSession, KernelChannels, None, {}, Session(key=b""), lambda c, m: None)


class StdinHandshakeTests(TestCase):
    """The stdin handshake with a kernel already listening (re-attached) is heard, however fast."""

    @defer.inlineCallbacks
    def test_a_handshake_done_before_the_monitor_could_start_is_still_heard(self):
        """Were stdin connected before its monitor, a handshake done in between was never told."""
        import zmq
        context = zmq.Context()
        self.addCleanup(context.term)
        kernel_stdin = context.socket(zmq.ROUTER)
        self.addCleanup(kernel_stdin.close, 0)
        port = kernel_stdin.bind_to_random_port("tcp://127.0.0.1")
        kernel_side = kernel_stdin.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.addCleanup(kernel_side.close, 0)
        self.addCleanup(kernel_stdin.disable_monitor)
        real_monitor = zmq.Socket.monitor

        def monitor_late(socket, address, events=zmq.EVENT_ALL):
            # the reactor thread paused (a loaded machine) between a connect and the monitor:
            # the handshake of a connected socket is over before its monitor starts
            if socket.get(zmq.LAST_ENDPOINT) and kernel_side.poll(TIMEOUT * 1000):
                kernel_side.recv_multipart()
            return real_monitor(socket, address, events)
        self.patch(zmq.Socket, "monitor", monitor_late)

        heard = defer.Deferred()

        class Channels(KernelChannels):
            def _stdin_event(self, parts):
                super()._stdin_event(parts)
                if self.stdin_connected and not heard.called:
                    heard.callback(None)
        factory = make_zmq_factory(reactor)
        self.addCleanup(factory.shutdown)
        info = {"transport": "tcp", "ip": "127.0.0.1", "key": "k" * 32,
                "signature_scheme": "hmac-sha256",
                **{f"{c}_port": 1 for c in ("shell", "iopub", "control", "hb")},  # nobody there
                "stdin_port": port}
        channels = Channels(factory, info, session_for(info), lambda c, m: None)
        self.addCleanup(channels.close)
        yield heard.addTimeout(TIMEOUT, reactor)
        self.assertTrue(channels.stdin_connected)


class ReconnectIntervalTests(TestCase):
    """Channels to a kernel that has not bound its ports yet connect again within milliseconds."""

    def test_every_channel_tries_again_after_5_ms_backing_off_to_100(self):
        """ZeroMQ's 100 ms default after a refused connect was most of a forked kernel's start time."""
        import zmq
        factory = make_zmq_factory(reactor)
        self.addCleanup(factory.shutdown)
        info = {"transport": "tcp", "ip": "127.0.0.1", "key": "k" * 32,
                "signature_scheme": "hmac-sha256",
                **{f"{c}_port": 1 for c in ("shell", "iopub", "control", "hb", "stdin")}}
        channels = KernelChannels(factory, info, session_for(info), lambda c, m: None)
        self.addCleanup(channels.close)
        sockets = [c.socket for c in channels._connections.values()]
        self.assertEqual(len(sockets), 5)
        self.assertEqual({(s.getsockopt(zmq.RECONNECT_IVL), s.getsockopt(zmq.RECONNECT_IVL_MAX))
                          for s in sockets}, {(5, 100)})


class VerifyingSessionTests(TestCase):
    """Kernel messages are checked like jupyter_client checks them, in bounded memory."""

    def setUp(self):
        self.kernel_side = Session(key=b"k" * 32)
        self.service_side = session_for({"key": "k" * 32})

    def frames(self, text):
        msg = self.kernel_side.msg("stream", {"name": "stdout", "text": text})
        return self.kernel_side.serialize(msg)[1:]   # without the b"<IDS|MSG>" delimiter

    def test_replay_memory_is_bounded(self):
        """However many messages arrive, at most REPLAY_WINDOW signatures are kept."""
        for n in range(REPLAY_WINDOW * 2 + 100):
            self.service_side.deserialize(self.frames(str(n)))
        self.assertLessEqual(len(self.service_side.digest_history), REPLAY_WINDOW)

    def test_a_recent_message_replayed_is_refused(self):
        """The same signed frames twice: the second is a replay."""
        frames = self.frames("once")
        self.assertEqual(self.service_side.deserialize(frames)["content"]["text"], "once")
        self.assertRaisesRegex(ValueError, "Duplicate", self.service_side.deserialize, frames)

    def test_the_most_recent_signatures_are_all_remembered(self):
        """Each of the last REPLAY_WINDOW messages is refused when replayed: the oldest are forgotten first."""
        sent = [self.frames(str(n)) for n in range(REPLAY_WINDOW + 100)]
        for frames in sent:
            self.service_side.deserialize(frames)
        for frames in sent[-REPLAY_WINDOW:]:
            self.assertRaisesRegex(ValueError, "Duplicate", self.service_side.deserialize, frames)
        self.service_side.deserialize(sent[0])  # forgotten: no longer a known replay

    def test_forged_signatures_are_not_remembered(self):
        """A wrongly signed message is refused and takes no room in the replay memory."""
        frames = self.frames("forged")
        frames[0] = b"0" * len(frames[0])
        self.assertRaisesRegex(ValueError, "Invalid Signature", self.service_side.deserialize, frames)
        self.assertEqual(len(self.service_side.digest_history), 0)


class Inbox:
    """The on_message callback of a test: keeps every message, and fires waiters on a match."""

    def __init__(self):
        self.messages = []
        self._waiters = []

    def __call__(self, channel, msg):
        self.messages.append((channel, msg))
        for predicate, d in list(self._waiters):
            if not d.called and predicate(channel, msg):
                self._waiters.remove((predicate, d))
                d.callback((channel, msg))

    def wait_for(self, predicate, timeout=TIMEOUT):
        """A Deferred of the first (channel, msg) matching *predicate*, bounded by *timeout*."""
        for channel, msg in self.messages:
            if predicate(channel, msg):
                return defer.succeed((channel, msg))
        d = defer.Deferred()
        self._waiters.append((predicate, d))
        return d.addTimeout(timeout, reactor)

    def caused_by(self, request):
        """The (channel, msg) pairs whose parent is *request*, in arrival order."""
        return [(c, m) for c, m in self.messages
                if m["parent_header"].get("msg_id") == request["msg_id"]]

    def idle_after(self, request):
        """Wait for the iopub ``idle`` status that ends *request*."""
        return self.wait_for(lambda c, m: (
            c == "iopub" and m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
            and m["parent_header"].get("msg_id") == request["msg_id"]))

    def stdout_of(self, request):
        return "".join(m["content"]["text"] for c, m in self.caused_by(request)
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def kernel_dir(test):
    """A not yet existing directory for *test*'s connection files, removed after it."""
    parent = tempfile.mkdtemp(prefix="webkernel-test-")
    test.addCleanup(shutil.rmtree, parent, ignore_errors=True)
    return os.path.join(parent, "kernels")


@pytest.mark.integration
class RealKernelTestCase(TestCase):
    """Starts a real ipykernel through KernelLauncher, with channels open and nudged."""

    @defer.inlineCallbacks
    def start_kernel(self):
        self.launcher = KernelLauncher(reactor, kernel_dir(self))
        kernel = yield self.launcher.launch("python3", uuid.uuid4().hex)
        self.addCleanup(self._stop_kernel, kernel)
        factory = make_zmq_factory(reactor)
        self.addCleanup(factory.shutdown)
        inbox = Inbox()
        channels = KernelChannels(factory, kernel.connection_info,
                                  session_for(kernel.connection_info), inbox,
                                  kernel_id=kernel.kernel_id)
        self.addCleanup(channels.close)
        info = yield channels.nudge(timeout=TIMEOUT)
        return kernel, channels, inbox, info

    @defer.inlineCallbacks
    def _stop_kernel(self, kernel):
        kernel.signal("KILL")
        yield kernel.ended.addTimeout(TIMEOUT, reactor)
        kernel.remove_files()

    def execute(self, channels, code, **options):
        return channels.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": False,
            "allow_stdin": False, **options,
        })


class KernelChannelsTests(RealKernelTestCase):
    """KernelChannels against a real ipykernel."""

    @defer.inlineCallbacks
    def test_nudge_returns_kernel_info(self):
        """nudge() fires with the kernel_info_reply content once shell and iopub both work."""
        _kernel, channels, inbox, info = yield self.start_kernel()
        verifyObject(IKernelChannels, channels)
        verifyObject(IKernelLauncher, self.launcher)
        self.assertEqual((info["status"], info["language_info"]["name"]), ("ok", "python"))
        self.assertTrue(any(c == "iopub" for c, _m in inbox.messages))
        self.assertFalse([m for c, m in inbox.messages if m["msg_type"] == "kernel_info_reply"])

    @defer.inlineCallbacks
    def test_execute_print(self):
        """print('hi') yields busy, execute_input, stream 'hi\\n', idle on iopub and an ok execute_reply on shell."""
        _kernel, channels, inbox, _info = yield self.start_kernel()
        request = self.execute(channels, "print('hi')")
        yield inbox.idle_after(request)
        yield inbox.wait_for(lambda c, m: c == "shell" and m["msg_type"] == "execute_reply")
        iopub = [(m["msg_type"], m["content"].get("execution_state") or m["content"].get("text"))
                 for c, m in inbox.caused_by(request) if c == "iopub"]
        self.assertEqual(iopub, [("status", "busy"), ("execute_input", None),
                                 ("stream", "hi\n"), ("status", "idle")])
        replies = [m for c, m in inbox.caused_by(request) if c == "shell"]
        self.assertEqual([m["content"]["status"] for m in replies], ["ok"])

    @defer.inlineCallbacks
    def test_twenty_flushed_lines_all_arrive(self):
        """Twenty lines printed with flush=True all arrive, in order."""
        _kernel, channels, inbox, _info = yield self.start_kernel()
        request = self.execute(channels, "for i in range(20):\n    print(i, flush=True)")
        yield inbox.idle_after(request)
        self.assertEqual(inbox.stdout_of(request), "".join(f"{i}\n" for i in range(20)))

    @defer.inlineCallbacks
    def test_a_burst_beyond_zeromqs_default_queue_all_arrives(self):
        """5,000 lines printed at once all arrive: iopub's receive queue has no 1,000-message limit."""
        _kernel, channels, inbox, _info = yield self.start_kernel()
        self.assertEqual(channels._connections["iopub"].socket.rcvhwm, 0)
        request = self.execute(channels, "for i in range(5000):\n    print(i, flush=True)")
        yield inbox.idle_after(request)
        self.assertEqual(inbox.stdout_of(request), "".join(f"{i}\n" for i in range(5000)))

    @defer.inlineCallbacks
    def test_input_request_round_trip(self):
        """input() in the kernel reaches us on stdin (shell and stdin share an identity) and our reply completes it."""
        _kernel, channels, inbox, _info = yield self.start_kernel()
        request = self.execute(channels, "print('hello', input('name? '))", allow_stdin=True)
        _c, prompt = yield inbox.wait_for(lambda c, m: c == "stdin")
        self.assertEqual((prompt["msg_type"], prompt["content"]["prompt"]), ("input_request", "name? "))
        channels.send("stdin", "input_reply", {"value": "ada"}, parent=prompt)
        yield inbox.idle_after(request)
        self.assertEqual(inbox.stdout_of(request), "hello ada\n")

    @defer.inlineCallbacks
    def test_badly_signed_and_malformed_messages_are_dropped(self):
        """A message signed with another key, and one that is not a Jupyter message, are logged and never delivered."""
        _kernel, channels, inbox, _info = yield self.start_kernel()
        events = []
        channels.log = Logger(observer=events.append)
        request = self.execute(channels, "\n".join([
            "from jupyter_client.session import Session",
            "k = get_ipython().kernel",
            "Session(key=b'not-the-key').send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'forged'})",
            "k.iopub_socket.send_multipart([b'not a jupyter message'])",
            "print('after')",
        ]))
        yield inbox.idle_after(request)
        self.assertEqual(inbox.stdout_of(request), "after\n")
        self.assertFalse([m for c, m in inbox.messages if m["content"].get("text") == "forged"])
        self.assertEqual(channels.dropped, 2)
        dropped = [e for e in events if e["log_format"].startswith("dropped")]
        self.assertEqual([e["channel"] for e in dropped], ["iopub", "iopub"])
        self.assertIn("Invalid Signature", dropped[0]["error"])

    @defer.inlineCallbacks
    def test_sending_on_iopub_or_after_close_is_refused(self):
        """Requests go on shell, control or stdin only, and nothing goes out after close()."""
        _kernel, channels, _inbox, _info = yield self.start_kernel()
        self.assertRaises(UnknownChannel, channels.send, "iopub", "status", {})
        channels.close()
        self.assertRaises(ChannelsClosed, channels.send, "shell", "kernel_info_request", {})
        self.assertRaises(ChannelsClosed, channels.ping)

    @defer.inlineCallbacks
    def test_heartbeat_answers_then_is_lost_when_killed(self):
        """HeartbeatMonitor over real pings sees answers, and reports the kernel lost after SIGKILL."""
        kernel, channels, _inbox, _info = yield self.start_kernel()
        answered, lost = defer.Deferred(), defer.Deferred()
        pongs = []

        def counted(echo):
            pongs.append(echo)
            if len(pongs) == 3:
                answered.callback(None)
            return echo

        def ping():
            return channels.ping().addCallback(counted)
        monitor = HeartbeatMonitor(reactor, ping, lambda: lost.callback(None),
                                   interval=0.2, timeout=0.2, max_misses=2, kernel_id=kernel.kernel_id)
        self.addCleanup(monitor.stop)
        monitor.start()
        yield answered.addTimeout(TIMEOUT, reactor)
        kernel.signal("KILL")
        yield lost.addTimeout(TIMEOUT, reactor)
        self.assertFalse(monitor.running)


class KernelLauncherTests(RealKernelTestCase):
    """KernelLauncher starting and stopping a real ipykernel."""

    @defer.inlineCallbacks
    def test_connection_file_is_private_and_ports_are_loopback(self):
        """The connection file is 0600 in a 0700 directory, and the kernel listens on loopback only."""
        kernel, _channels, _inbox, _info = yield self.start_kernel()
        self.assertEqual(stat.S_IMODE(os.stat(kernel.connection_file).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.launcher.kernel_dir).st_mode) & 0o777, 0o700)
        info = kernel.connection_info
        self.assertEqual((info["ip"], info["transport"], info["signature_scheme"]),
                         ("127.0.0.1", "tcp", "hmac-sha256"))
        listening = [c.laddr for c in psutil.Process(kernel.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        ports = {info[f"{name}_port"] for name in ("shell", "iopub", "stdin", "control", "hb")}
        self.assertEqual(ports - {port for _ip, port in listening}, set())
        self.assertEqual({ip for ip, _port in listening}, {"127.0.0.1"})

    @defer.inlineCallbacks
    def test_shutdown_request_ends_the_process(self):
        """shutdown_request on control is answered, the process exits with 0, and its files can be removed."""
        kernel, channels, inbox, _info = yield self.start_kernel()
        request = channels.send("control", "shutdown_request", {"restart": False})
        channel, reply = yield inbox.wait_for(lambda c, m: c == "control" and m["msg_type"] == "shutdown_reply")
        self.assertEqual((channel, reply["parent_header"]["msg_id"]), ("control", request["msg_id"]))
        status = yield kernel.exited.addTimeout(TIMEOUT, reactor)
        self.assertEqual(status, KernelExit(exit_code=0))
        yield kernel.ended.addTimeout(TIMEOUT, reactor)
        kernel.remove_files()
        self.assertFalse(os.path.exists(kernel.connection_file))
        self.assertEqual(os.listdir(self.launcher.kernel_dir), [])

    @defer.inlineCallbacks
    def test_sigkill_fires_exited(self):
        """SIGKILL makes exited fire with the signal, and a later signal reports the process gone."""
        kernel, _channels, _inbox, _info = yield self.start_kernel()
        self.assertTrue(kernel.signal("KILL"))
        status = yield kernel.exited.addTimeout(TIMEOUT, reactor)
        self.assertEqual(status, KernelExit(exit_code=None, signal=9))
        self.assertFalse(kernel.signal("TERM"))

    def test_unknown_kernelspec_and_bad_kernel_id_fail(self):
        """An unknown kernelspec name and a kernel id that is not [0-9a-z_] fail the Deferred, starting nothing."""
        launcher = KernelLauncher(reactor, kernel_dir(self))
        self.failureResultOf(launcher.launch("no-such-kernel", uuid.uuid4().hex), NoSuchKernelSpec)
        self.failureResultOf(launcher.launch("python3", "../escape"), InvalidKernelId)
        self.assertFalse(os.path.exists(launcher.kernel_dir))
