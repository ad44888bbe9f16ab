"""The kernel host's logic with no kernel, no socket and no global reactor.

OutputHistory on its own; KernelConversation over FakeKernelChannels;
KernelSupervisor with a fake launcher whose kernels a test ends, and a
``task.Clock``; and the whole KernelHost attached to a MemoryRouter, called by
a MemoryClient with WAMP message objects. The test plays the kernel: it reads
the requests the host sent from ``FakeKernelChannels.sent`` and answers with
``reply``/``publish``.
"""

import itertools
import json
import os
import shutil
import tempfile

from autobahn.wamp import message, types
from autobahn.wamp.exception import ApplicationError
from jupyter_client.kernelspec import KernelSpecManager
from twisted.internet import defer, task
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from broker import errors
from broker.auth import KERNEL_HOST_ROLE, Principal
from broker.kernel import uris
from broker.kernel.errors import KernelGone
from broker.kernel.history import ENVELOPE_BYTES, OutputHistory, approximate_size
from broker.kernel.host import KernelHost
from broker.kernel.interfaces import IKernelLauncher
from broker.kernel.launcher import KernelExit, KernelLauncher
from broker.kernel.results import MAX_RESULT_OUTPUT_BYTES
from broker.kernel.session import KernelConversation, NoPendingInput
from broker.kernel.supervisor import (
    PORT_RETRIES,
    KernelDied,
    KernelShutDown,
    KernelStartFailed,
    KernelSupervisor,
)
from broker.kernel.testing import FakeKernelChannels, FakeProcessReactor
from broker.router.local import attach
from broker.testing import MemoryRouter, run_due

KERNEL_INFO = {"status": "ok", "protocol_version": "5.3", "implementation": "ipython",
               "language_info": {"name": "python"}}
CALLER = {"session": 7, "authid": "ada", "authrole": "user"}


# -- doubles -------------------------------------------------------------------


class FakeLaunchedKernel:
    """What a launch gives back: ``exit()`` ends it; signals and file removals are recorded."""

    pids = itertools.count(4000)

    def __init__(self, kernel_id, kernel_name, interrupt_mode="signal", pid=None):
        self.kernel_id, self.kernel_name = kernel_id, kernel_name
        self.connection_info = {"key": "k", "kernel_name": kernel_name}
        self.interrupt_mode = interrupt_mode
        self.pid = next(self.pids) if pid is None else pid
        self.exited = defer.Deferred()
        self.signals = []
        self.files_removed = 0
        self.output = ""   # what the kernel printed (its log)
        self.watching = True

    def stop_watching(self):
        self.watching = False

    def signal(self, name):
        self.signals.append(name)
        return not self.exited.called

    def remove_files(self):
        self.files_removed += 1

    def output_tail(self):
        return self.output

    def exit(self, exit_code=0, signal=None):
        self.exited.callback(KernelExit(exit_code, signal))


@implementer(IKernelLauncher)
class FakeLauncher:
    """Launches FakeLaunchedKernels at once; adopts the pids in ``running``, others are gone."""

    def __init__(self, names=("python3",), interrupt_mode="signal"):
        self.names = names
        self.interrupt_mode = interrupt_mode
        self.launched = []
        self.adopted = []
        self.running = set()

    def kernelspecs(self):
        specs = {name: {"name": name, "spec": {"display_name": name, "language": "python"}}
                 for name in self.names}
        return {"default": self.names[0], "kernelspecs": specs}

    def launch(self, kernel_name, kernel_id, owner=None):
        kernel = FakeLaunchedKernel(kernel_id, kernel_name, self.interrupt_mode)
        self.launched.append(kernel)
        return defer.succeed(kernel)

    def adopt(self, kernel_name, kernel_id, pid, poll_interval=1.0):
        if pid not in self.running:
            return defer.fail(KernelGone(f"no process {pid}"))
        kernel = FakeLaunchedKernel(kernel_id, kernel_name, self.interrupt_mode, pid=pid)
        self.adopted.append(kernel)
        return defer.succeed(kernel)


class ChannelsFactory:
    """Makes FakeKernelChannels and keeps each one it made."""

    def __init__(self):
        self.made = []

    def __call__(self, connection_info, on_message, kernel_id):
        channels = FakeKernelChannels(on_message)
        self.made.append(channels)
        return channels

    @property
    def last(self):
        return self.made[-1]


def sent(channels, msg_type, channel=None):
    """The last message of *msg_type* the host sent on *channels*."""
    found = [m for c, m in channels.sent
             if m["msg_type"] == msg_type and (channel is None or c == channel)]
    assert found, f"no {msg_type} in {[m['msg_type'] for _, m in channels.sent]}"
    return found[-1]


def run_execute(channels, request, outputs=(), status="ok", idle_first=False):
    """Play the kernel executing *request*: busy, *outputs*, then reply and idle (in either order)."""
    channels.publish("status", {"execution_state": "busy"}, parent=request)
    for msg_type, content in outputs:
        channels.publish(msg_type, content, parent=request)
    reply = {"status": status, "execution_count": 1, "user_expressions": {}}
    if status == "error":
        reply.update(ename="ZeroDivisionError", evalue="division by zero", traceback=["tb"])
    steps = [lambda: channels.reply("shell", request, "execute_reply", reply),
             lambda: channels.publish("status", {"execution_state": "idle"}, parent=request)]
    for step in (reversed(steps) if idle_first else steps):
        step()


def stream(text, name="stdout"):
    return ("stream", {"name": name, "text": text})


# -- OutputHistory ---------------------------------------------------------------


def fill(history, count, text="x"):
    for _ in range(count):
        history.append({"msg_type": "stream", "content": {"name": "stdout", "text": text}})


class OutputHistoryTests(SynchronousTestCase):
    """The numbered, bounded history of one kernel's output."""

    def test_seq_is_gap_free_from_one(self):
        """Each appended output gets the next seq, starting at 1."""
        history = OutputHistory()
        outputs = [history.append({"content": {"text": str(i)}}) for i in range(5)]
        self.assertEqual([o["seq"] for o in outputs], [1, 2, 3, 4, 5])
        self.assertEqual((history.first_seq, history.last_seq), (1, 5))

    def test_empty_history(self):
        """An empty history starts at 1, ends at 0 and is complete."""
        self.assertEqual(OutputHistory().since(0),
                         {"first_seq": 1, "last_seq": 0, "outputs": [], "complete": True})

    def test_message_limit_drops_the_oldest(self):
        """Beyond max_messages the oldest outputs go; seq numbering goes on."""
        history = OutputHistory(max_messages=3)
        fill(history, 5)
        window = history.since(0)
        self.assertEqual([o["seq"] for o in window["outputs"]], [3, 4, 5])
        self.assertEqual((window["first_seq"], window["last_seq"]), (3, 5))

    def test_byte_limit_drops_the_oldest(self):
        """Beyond max_bytes the oldest outputs go until the rest fits."""
        history = OutputHistory(max_bytes=3 * (100 + ENVELOPE_BYTES))
        fill(history, 5, text="y" * 100)
        self.assertEqual([o["seq"] for o in history.since(0)["outputs"]], [3, 4, 5])
        history.append({"msg_type": "stream", "content": {"name": "stdout", "text": "z" * 250}})
        self.assertEqual([o["seq"] for o in history.since(0)["outputs"]], [5, 6])

    def test_byte_limit_counts_bytes_not_characters(self):
        """Non-ASCII stream text counts as its UTF-8 bytes: 100 emoji are 400 bytes, not 100."""
        history = OutputHistory(max_bytes=3 * (400 + ENVELOPE_BYTES))
        fill(history, 5, text="\N{SNAKE}" * 100)
        self.assertEqual([o["seq"] for o in history.since(0)["outputs"]], [3, 4, 5])
        self.assertEqual(approximate_size({"content": {"name": "stdout", "text": "\u20ac" * 10}}),
                         30 + ENVELOPE_BYTES)

    def test_an_output_larger_than_the_limit_is_numbered_but_not_kept(self):
        """A single output beyond max_bytes still takes its seq; asking for it is incomplete."""
        history = OutputHistory(max_bytes=100)
        fill(history, 1, text="a" * 1000)
        self.assertEqual(history.since(0),
                         {"first_seq": 2, "last_seq": 1, "outputs": [], "complete": False})
        self.assertTrue(history.since(1)["complete"])

    def test_since_returns_what_came_after(self):
        """since(seq) gives the outputs with a greater seq, and complete is true."""
        history = OutputHistory()
        fill(history, 6)
        window = history.since(4)
        self.assertEqual([o["seq"] for o in window["outputs"]], [5, 6])
        self.assertTrue(window["complete"])
        self.assertEqual(history.since(6)["outputs"], [])
        self.assertEqual(history.since(99)["outputs"], [])

    def test_since_answers_in_pages_of_bounded_bytes(self):
        """A catch-up over more than max_bytes comes in pages, each at least one output."""
        history = OutputHistory()
        fill(history, 10, text="p" * 1000)   # 1,256 bytes each, roughly
        page = history.since(0, max_bytes=3000)
        self.assertEqual([o["seq"] for o in page["outputs"]], [1, 2])
        self.assertEqual(page["last_seq"], 10)
        self.assertEqual([o["seq"] for o in history.since(2, max_bytes=3000)["outputs"]], [3, 4])
        self.assertEqual([o["seq"] for o in history.since(0, max_bytes=10)["outputs"]], [1])

    def test_since_says_when_history_no_longer_holds_it(self):
        """Asking from before first_seq gives what is kept, with complete false."""
        history = OutputHistory(max_messages=3)
        fill(history, 6)
        window = history.since(1)
        self.assertFalse(window["complete"])
        self.assertEqual([o["seq"] for o in window["outputs"]], [4, 5, 6])
        self.assertTrue(history.since(3)["complete"])  # 4 is the first one needed and is kept

    def test_limit_caps_the_outputs_returned(self):
        """limit returns at most that many, oldest first; 0 or less returns none."""
        history = OutputHistory()
        fill(history, 10)
        self.assertEqual([o["seq"] for o in history.since(2, limit=3)["outputs"]], [3, 4, 5])
        self.assertEqual(history.since(2, limit=0)["outputs"], [])
        self.assertEqual(history.since(2, limit=-4)["outputs"], [])
        self.assertEqual(history.since(2, limit=3)["last_seq"], 10)


# -- KernelConversation ------------------------------------------------------------


class ConversationTestCase(SynchronousTestCase):
    """A conversation over FakeKernelChannels; ``published`` holds (sub-topic, output)."""

    def setUp(self):
        self.published = []
        self.states = []
        self.conversation = KernelConversation(
            "k1", lambda sub, output: self.published.append((sub, output)),
            on_state=self.states.append)
        self.channels = FakeKernelChannels(self.conversation.message_received)
        self.conversation.channels = self.channels

    def execute(self, code="1", caller=CALLER, on_output=None):
        d = self.conversation.request("shell", "execute_request", {"code": code}, caller, on_output)
        return d, sent(self.channels, "execute_request")


class KernelConversationTests(ConversationTestCase):
    """Requests, replies and outputs of one kernel."""

    def test_execute_waits_for_reply_and_idle(self):
        """An execute finishes only once both execute_reply and status idle have arrived."""
        d, request = self.execute()
        self.channels.publish("status", {"execution_state": "busy"}, parent=request)
        self.channels.publish(*stream("a"), parent=request)
        self.channels.reply("shell", request, "execute_reply", {"status": "ok"})
        self.assertNoResult(d)
        self.channels.publish("status", {"execution_state": "idle"}, parent=request)
        reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual(reply["content"], {"status": "ok"})
        self.assertEqual([o["msg_type"] for o in outputs], ["status", "stream", "status"])

    def test_each_output_is_measured_once(self):
        """An output's size estimate (a JSON encoding for rich output) is computed once, for history and result alike."""
        import broker.kernel.history
        import broker.kernel.results
        import broker.kernel.session
        measured = []

        def counting(output):
            measured.append(output["msg_type"])
            return original(output)
        original = broker.kernel.history.approximate_size
        for module in (broker.kernel.history, broker.kernel.results, broker.kernel.session):
            self.patch(module, "approximate_size", counting)
        d, request = self.execute()
        run_execute(self.channels, request, [("display_data", {"data": {"text/plain": "x"}})])
        _reply, outputs = self.successResultOf(d)
        self.assertEqual(len(outputs), 3)
        self.assertEqual(measured, ["status", "display_data", "status"])

    def test_idle_before_reply_also_finishes(self):
        """status idle may come before execute_reply: the execute finishes with the reply."""
        d, request = self.execute()
        run_execute(self.channels, request, [stream("a")], idle_first=True)
        reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual(reply["msg_type"], "execute_reply")
        self.assertEqual([o["msg_type"] for o in outputs], ["status", "stream", "status"])

    def test_outputs_in_order_with_seq_parent_and_caller(self):
        """Each output carries the next seq, the request's msg_id and the request's caller."""
        progress = []
        d, request = self.execute(on_output=progress.append)
        run_execute(self.channels, request, [stream("a"), stream("b", "stderr"),
                                             ("execute_result", {"data": {"text/plain": "1"}})])
        _reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual([o["seq"] for o in outputs], [1, 2, 3, 4, 5])
        self.assertEqual([o["content"].get("text") for o in outputs[1:3]], ["a", "b"])
        self.assertEqual({o["parent_msg_id"] for o in outputs}, {request["msg_id"]})
        self.assertEqual([o["caller"] for o in outputs], [CALLER] * 5)
        self.assertEqual(progress, outputs)
        self.assertEqual([sub for sub, _ in self.published],
                         ["iopub.status", "iopub.stream", "iopub.stream", "iopub.execute_result",
                          "iopub.status"])
        self.assertEqual([o for _, o in self.published], outputs)

    def test_output_of_other_parents_is_published_only(self):
        """iopub messages caused by something else reach publish but not the request."""
        progress = []
        d, request = self.execute(on_output=progress.append)
        other = self.channels.send("shell", "execute_request", {"code": "other"})
        self.channels.publish(*stream("stray"), parent=other)
        self.channels.publish(*stream("orphan"))
        run_execute(self.channels, request, [stream("mine")])
        _reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual([o["content"].get("text") for o in outputs], [None, "mine", None])
        self.assertEqual([o["content"]["text"] for _, o in self.published[:2]], ["stray", "orphan"])
        self.assertEqual(self.published[0][1]["parent_msg_id"], other["msg_id"])
        self.assertEqual(self.published[1][1]["parent_msg_id"], None)
        self.assertIsNone(self.published[1][1]["caller"])
        self.assertEqual([o["seq"] for _, o in self.published], [1, 2, 3, 4, 5])
        self.assertEqual(progress, outputs)

    def test_a_running_execute_keeps_only_what_its_result_can_carry(self):
        """While an execute runs, outputs past the result's byte bound are dropped at once, their seqs named."""
        d, request = self.execute()
        self.channels.publish("status", {"execution_state": "busy"}, parent=request)
        pending = self.conversation._requests[request["msg_id"]].outputs
        line = "x" * (1024 * 1024)
        for _ in range(20):  # 20 MiB of output, more than the 4 MiB the result carries
            self.channels.publish(*stream(line), parent=request)
            self.assertLessEqual(pending.size, MAX_RESULT_OUTPUT_BYTES)
        self.assertLessEqual(len(pending), 4)
        run_execute(self.channels, request, [], status="ok")
        _reply, outputs = self.successResultOf(d)
        self.assertEqual(outputs.omitted[0], 1)
        self.assertEqual(outputs.omitted[1] + 1, outputs.outputs[0]["seq"])
        self.assertEqual(outputs.outputs[-1]["content"], {"execution_state": "idle"})

    def test_other_requests_finish_on_their_reply(self):
        """A request other than execute fires with its reply, not waiting for idle."""
        d = self.conversation.request("shell", "complete_request", {"code": "im", "cursor_pos": 2})
        request = sent(self.channels, "complete_request")
        self.channels.reply("shell", request, "complete_reply", {"matches": ["import"]})
        self.assertEqual(self.successResultOf(d)["content"], {"matches": ["import"]})

    def test_buffers_are_carried_as_bytes(self):
        """An iopub message with binary buffers gives an output with ``buffers``."""
        d, request = self.execute()
        self.channels.publish("display_data", {"data": {}}, parent=request, buffers=[b"\x00\x01"])
        run_execute(self.channels, request)
        _reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual(outputs[0]["buffers"], [b"\x00\x01"])
        self.assertNotIn("buffers", outputs[1])

    def test_iopub_welcome_is_ignored(self):
        """ipykernel 7's iopub_welcome is neither numbered nor published."""
        self.channels.publish("iopub_welcome", {"subscription": ""})
        self.assertEqual(self.published, [])
        self.assertEqual(self.conversation.history.last_seq, 0)

    def test_status_is_reported_not_kept(self):
        """on_state hears each busy and idle the kernel reports; the conversation keeps no state of its own."""
        d, request = self.execute()
        self.channels.publish("status", {"execution_state": "busy"}, parent=request)
        self.channels.publish("status", {"execution_state": "starting"})
        run_execute(self.channels, request)
        self.successResultOf(d)
        self.assertEqual(self.states, ["busy", "busy", "idle"])
        self.assertFalse(hasattr(self.conversation, "execution_state"))

    def test_a_late_reply_to_a_canceled_request_is_ignored(self):
        """Canceling forgets the request; its reply and outputs are still published."""
        d, request = self.execute()
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        run_execute(self.channels, request, [stream("late")])
        self.assertEqual(len(self.published), 3)

    def test_a_failing_progress_callback_does_not_stall_the_request(self):
        """A caller's progress callback that raises still lets the execute finish."""
        def broken_progress(output):
            raise RuntimeError("transport lost")
        d, request = self.execute(on_output=broken_progress)
        run_execute(self.channels, request)
        _reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual(len(outputs), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # logged once, then dropped

    def test_request_without_channels_fails(self):
        """A request while the kernel has no channels open fails at once."""
        self.conversation.channels = None
        self.failureResultOf(self.conversation.request("shell", "kernel_info_request", {}),
                             ConnectionError)


class KernelConversationInputTests(ConversationTestCase):
    """input(): the kernel asks on stdin, a caller answers."""

    def ask(self, on_output=None):
        d, request = self.execute(code="input('who? ')", on_output=on_output)
        self.channels.publish("status", {"execution_state": "busy"}, parent=request)
        self.channels.reply("stdin", request, "input_request",
                            {"prompt": "who? ", "password": False})
        return d, request

    def test_input_request_is_pending_published_and_given_to_the_request(self):
        """An input_request becomes the pending input, an output on 'stdin' and a progress item."""
        progress = []
        _d, request = self.ask(progress.append)
        pending, caller = self.conversation.pending_input
        self.assertEqual(pending["content"]["prompt"], "who? ")
        self.assertEqual(caller, CALLER)
        sub, output = self.published[-1]
        self.assertEqual((sub, output["msg_type"], output["seq"]), ("stdin", "input_request", 2))
        self.assertEqual(output["parent_msg_id"], request["msg_id"])
        self.assertEqual(progress[-1], output)

    def test_answer_input_sends_input_reply_to_the_request(self):
        """answer_input sends input_reply on stdin with the input_request as parent, once."""
        self.ask()
        asked = self.conversation.pending_input[0]
        self.conversation.answer_input("ada")
        channel, reply = self.channels.sent[-1]
        self.assertEqual((channel, reply["msg_type"], reply["content"]),
                         ("stdin", "input_reply", {"value": "ada"}))
        self.assertEqual(reply["parent_header"]["msg_id"], asked["msg_id"])
        self.assertIsNone(self.conversation.pending_input)
        self.assertRaises(NoPendingInput, self.conversation.answer_input, "again")

    def test_final_outputs_include_the_input_request(self):
        """The final result of an execute holds its input_request, as its progress did."""
        progress = []
        d, request = self.ask(progress.append)
        self.conversation.answer_input("ada")
        self.channels.reply("shell", request, "execute_reply", {"status": "ok"})
        self.channels.publish("status", {"execution_state": "idle"}, parent=request)
        _reply, outputs = self.successResultOf(d)
        outputs = outputs.outputs
        self.assertEqual(outputs, progress)

    def test_no_pending_input(self):
        """answer_input with no input_request pending raises NoPendingInput."""
        self.assertRaises(NoPendingInput, self.conversation.answer_input, "x")
        self.assertEqual(self.channels.sent, [])

    def test_fail_all_errbacks_pending_requests_and_forgets_input(self):
        """fail_all fails every pending request with the failure given and drops pending input."""
        d1, _ = self.ask()
        d2 = self.conversation.request("shell", "kernel_info_request", {})
        self.conversation.fail_all(Failure(KernelDied("gone")))
        self.failureResultOf(d1, KernelDied)
        self.failureResultOf(d2, KernelDied)
        self.assertIsNone(self.conversation.pending_input)
        self.assertRaises(NoPendingInput, self.conversation.answer_input, "x")


# -- KernelSupervisor ------------------------------------------------------------------


class SupervisorTestCase(SynchronousTestCase):
    """A supervisor with a fake launcher, FakeKernelChannels and a task.Clock."""

    interrupt_mode = "signal"

    def setUp(self):
        self.clock = task.Clock()
        self.launcher = FakeLauncher(interrupt_mode=self.interrupt_mode)
        self.channels = ChannelsFactory()
        self.conversation = KernelConversation("k1", lambda sub, output: None)
        self.events = []
        self.supervisor = KernelSupervisor(
            "k1", "python3", self.conversation, self.launcher, self.channels, self.clock,
            lambda event, reason: self.events.append(event), max_restarts=2,
            shutdown_grace=5.0, heartbeat_interval=3.0)

    def ready(self):
        """Answer the current channels' nudge as a kernel that is ready."""
        self.channels.last.nudges[-1].callback(KERNEL_INFO)

    def started(self):
        d = self.supervisor.start()
        self.ready()
        self.assertEqual(self.successResultOf(d), KERNEL_INFO)
        return self.launcher.launched[-1]

    def pending_execute(self):
        return self.conversation.request("shell", "execute_request", {"code": "1"})


class KernelSupervisorTests(SupervisorTestCase):
    """Starting, dying, restarting."""

    def test_fake_launcher_provides_the_interface(self):
        """The fake launcher of these tests is an IKernelLauncher."""
        verifyObject(IKernelLauncher, self.launcher)

    def test_ready_after_the_nudge(self):
        """start fires with kernel_info once the nudge succeeds; the kernel is then idle."""
        d = self.supervisor.start()
        self.assertNoResult(d)
        self.assertEqual(self.supervisor.state, "starting")
        self.assertIs(self.conversation.channels, self.channels.last)
        self.ready()
        self.assertEqual(self.successResultOf(d), KERNEL_INFO)
        self.assertEqual(self.supervisor.state, "idle")
        self.assertEqual(self.events, [])

    def test_the_kernel_reports_busy_and_idle_to_its_supervisor(self):
        """The kernel's iopub busy/idle changes the supervisor's state once per change, told as event state."""
        self.started()
        request = self.conversation.channels.send("shell", "execute_request", {"code": "1"})
        for state in ("busy", "busy", "idle", "idle"):
            self.conversation.channels.publish("status", {"execution_state": state}, parent=request)
        self.assertEqual(self.events, ["state", "state"])
        self.assertEqual(self.supervisor.state, "idle")

    def test_a_late_readiness_probe_leaves_a_ready_kernel_idle(self):
        """busy/idle of a kernel_info_request (a nudge answered after the kernel was ready) is not a state."""
        self.started()
        probe = self.conversation.channels.send("shell", "kernel_info_request", {})
        self.conversation.channels.publish("status", {"execution_state": "busy"}, parent=probe)
        self.assertEqual((self.supervisor.state, self.events), ("idle", []))

    def test_an_interrupt_answered_while_code_runs_leaves_the_kernel_busy(self):
        """The idle of an interrupt_request (answered on control while the cell runs) is not the cell's end."""
        self.started()
        request = self.conversation.channels.send("shell", "execute_request", {"code": "1"})
        self.conversation.channels.publish("status", {"execution_state": "busy"}, parent=request)
        interrupt = self.conversation.channels.send("control", "interrupt_request", {})
        self.conversation.channels.publish("status", {"execution_state": "busy"}, parent=interrupt)
        self.conversation.channels.publish("status", {"execution_state": "idle"}, parent=interrupt)
        self.assertEqual((self.supervisor.state, self.events), ("busy", ["state"]))

    def test_a_report_does_not_override_the_lifecycle(self):
        """busy or idle from the kernel while it starts or is dead leaves the supervisor's state alone."""
        self.supervisor.start()
        self.conversation.channels.publish("status", {"execution_state": "idle"})
        self.assertEqual((self.supervisor.state, self.events), ("starting", []))
        self.supervisor.change_state("dead", "gone")
        self.supervisor.execution_state_reported("busy")
        self.assertEqual((self.supervisor.state, self.supervisor.reason), ("dead", "gone"))

    def test_a_failed_start_leaves_the_supervisor_dead_with_its_reason(self):
        """The supervisor itself says dead (and why) when a first start fails: nobody else sets its state."""
        d = self.supervisor.start()
        self.channels.last.nudges[-1].errback(Failure(RuntimeError("no answer")))
        self.failureResultOf(d, KernelStartFailed)
        self.assertEqual(self.supervisor.state, "dead")
        self.assertIn("no answer", self.supervisor.reason)
        self.assertEqual(self.events, [])  # the host says dead, as it forgets the kernel

    def test_exit_while_ready_is_death_and_restart_under_the_same_id(self):
        """A ready kernel's exit fails pending requests, says dead, and restarts it."""
        first = self.started()
        pending = self.pending_execute()
        first.exit(1)
        self.failureResultOf(pending, KernelDied)
        self.assertEqual(self.events, ["dead", "restarting"])
        self.assertIn("the kernel process exited", self.supervisor.reason)
        self.assertTrue(self.channels.made[0].closed)
        self.assertEqual(first.files_removed, 1)
        second = self.launcher.launched[-1]
        self.assertIsNot(second, first)
        self.assertEqual(second.kernel_id, "k1")
        self.ready()
        self.assertEqual(self.events, ["dead", "restarting", "restarted"])
        self.assertEqual(self.supervisor.state, "idle")
        self.assertIs(self.conversation.channels, self.channels.last)

    def test_state_is_restarting_until_the_new_kernel_is_ready(self):
        """While an automatic restart waits for the new kernel, the state says restarting."""
        self.started().exit(1)
        self.assertEqual(self.supervisor.state, "restarting")

    def test_no_more_restarts_after_max_restarts(self):
        """After max_restarts automatic restarts a death is final: dead, files removed."""
        self.started()
        for _ in range(2):
            self.launcher.launched[-1].exit(1)
            self.ready()
        last = self.launcher.launched[-1]
        last.exit(1)
        self.assertEqual(len(self.launcher.launched), 3)
        self.assertEqual(self.events, ["dead", "restarting", "restarted"] * 2 + ["dead"])
        self.assertEqual(self.supervisor.state, "dead")
        self.assertEqual(last.files_removed, 1)
        self.assertTrue(self.channels.last.closed)

    def test_heartbeat_lost_is_death_and_kills_the_hung_process(self):
        """Three unanswered pings: dead, the hung process gets KILL, a fresh one is started."""
        first = self.started()
        pending = self.pending_execute()
        self.assertEqual(len(self.channels.last.pings), 1)
        self.clock.pump([3.0, 3.0, 3.0])
        self.failureResultOf(pending, KernelDied)
        self.assertEqual(self.events, ["dead", "restarting"])
        self.assertIn("heartbeat", self.supervisor.reason)
        self.assertEqual(first.signals, ["KILL"])
        second = self.launcher.launched[-1]
        self.assertIsNot(second, first)
        self.assertEqual(second.signals, [])
        first.exit(signal=9)  # the old process's end is not another death
        self.ready()
        self.assertEqual(self.events, ["dead", "restarting", "restarted"])

    def test_answered_heartbeats_keep_it_alive(self):
        """A kernel that answers its pings is not declared dead."""
        self.started()
        for _ in range(5):
            self.channels.last.pings[-1].callback(b"ping")
            self.clock.advance(3.0)
        self.assertEqual(self.events, [])
        self.assertEqual(self.supervisor.state, "idle")

    def test_exit_while_starting_fails_the_start_without_restart(self):
        """A kernel that exits before it is ready fails start with KernelStartFailed, no restart."""
        d = self.supervisor.start()
        kernel = self.launcher.launched[-1]
        kernel.exit(1)
        failure = self.failureResultOf(d, KernelStartFailed)
        self.assertIn("exited while starting", failure.getErrorMessage())
        self.assertEqual(len(self.launcher.launched), 1)
        self.assertEqual(self.events, [])
        self.assertEqual(kernel.files_removed, 1)
        self.assertTrue(self.channels.last.closed)

    def test_exit_while_starting_says_what_the_kernel_said(self):
        """The start's failure ends with the last line the kernel printed."""
        d = self.supervisor.start()
        kernel = self.launcher.launched[-1]
        kernel.output = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'x'\n"
        kernel.exit(1)
        self.assertIn("exited while starting (exit code 1): ModuleNotFoundError: No module named 'x'",
                      self.failureResultOf(d, KernelStartFailed).getErrorMessage())

    def test_a_port_taken_before_the_kernel_bound_it_means_new_ports(self):
        """A kernel that could not bind its ports is launched again; the start goes on."""
        d = self.supervisor.start()
        first = self.launcher.launched[-1]
        first.output = "zmq.error.ZMQError: Address already in use (addr='tcp://127.0.0.1:40001')"
        first.exit(1)
        self.assertNoResult(d)
        self.assertEqual(len(self.launcher.launched), 2)
        self.assertEqual(first.files_removed, 1)
        self.assertTrue(self.channels.made[0].closed)
        self.ready()
        self.assertEqual(self.successResultOf(d), KERNEL_INFO)
        self.assertEqual(self.events, [])
        self.assertEqual(self.supervisor.state, "idle")

    def test_ports_are_tried_three_more_times_at_most(self):
        """After PORT_RETRIES launches with new ports the start fails, saying why."""
        d = self.supervisor.start()
        for _ in range(PORT_RETRIES + 1):
            self.assertNoResult(d)
            kernel = self.launcher.launched[-1]
            kernel.output = "zmq.error.ZMQError: Address already in use"
            kernel.exit(1)
        self.assertIn("Address already in use", self.failureResultOf(d, KernelStartFailed).getErrorMessage())
        self.assertEqual(len(self.launcher.launched), PORT_RETRIES + 1)

    def test_nudge_failure_kills_the_kernel(self):
        """A kernel that never becomes ready fails start and is killed."""
        d = self.supervisor.start()
        self.channels.last.nudges[-1].errback(TimeoutError("not ready after 60 s"))
        failure = self.failureResultOf(d, KernelStartFailed)
        self.assertIn("not ready after 60 s", failure.getErrorMessage())
        self.assertEqual(self.launcher.launched[-1].signals, ["KILL"])

    def test_shutdown_asks_then_waits_the_grace_then_kills(self):
        """shutdown sends shutdown_request on control, waits the grace period, KILLs, removes files."""
        kernel = self.started()
        pending = self.pending_execute()
        channels = self.channels.last
        done = self.supervisor.shutdown()
        request = sent(channels, "shutdown_request")
        self.assertEqual((channels.sent[-1][0], request["content"]), ("control", {"restart": False}))
        self.assertEqual(kernel.signals, [])
        self.clock.advance(4.9)
        self.assertEqual(kernel.signals, [])
        self.clock.advance(0.1)
        self.assertEqual(kernel.signals, ["KILL"])
        self.assertNoResult(done)
        kernel.exit(signal=9)
        self.successResultOf(done)
        self.assertEqual(kernel.files_removed, 1)
        self.assertTrue(channels.closed)
        self.failureResultOf(pending, KernelShutDown)
        self.assertEqual((self.supervisor.state, self.events), ("dead", []))

    def test_shutdown_of_a_kernel_that_obeys_needs_no_kill(self):
        """A kernel that exits on shutdown_request is not signalled and no timer is left."""
        kernel = self.started()
        done = self.supervisor.shutdown()
        kernel.exit(0)
        self.successResultOf(done)
        self.assertEqual(kernel.signals, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.events, [])

    def test_restart_stops_and_starts_under_the_same_id(self):
        """restart shuts the process down and fires once a new one is ready."""
        first = self.started()
        d = self.supervisor.restart()
        first.exit(0)
        self.assertNoResult(d)
        self.assertEqual(self.events, ["restarting"])
        self.ready()
        self.successResultOf(d)
        self.assertEqual(self.events, ["restarting", "restarted"])
        self.assertEqual([k.kernel_id for k in self.launcher.launched], ["k1", "k1"])

    def test_interrupt_by_signal(self):
        """With interrupt_mode 'signal' an interrupt is SIGINT to the process."""
        kernel = self.started()
        self.supervisor.interrupt()
        self.assertEqual(kernel.signals, ["INT"])


class KernelSupervisorMessageInterruptTests(SupervisorTestCase):
    """A kernelspec that asks for interrupts by message."""

    interrupt_mode = "message"

    def test_interrupt_by_message(self):
        """With interrupt_mode 'message' an interrupt is interrupt_request on control."""
        kernel = self.started()
        self.supervisor.interrupt()
        self.assertEqual(kernel.signals, [])
        channel, request = self.channels.last.sent[-1]
        self.assertEqual((channel, request["msg_type"]), ("control", "interrupt_request"))


class KernelSupervisorWithLauncherTests(SynchronousTestCase):
    """The supervisor over the real KernelLauncher on a FakeProcessReactor."""

    def setUp(self):
        root = tempfile.mkdtemp(prefix="webkernel-test-")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        os.makedirs(os.path.join(root, "kernels", "msgint"))
        with open(os.path.join(root, "kernels", "msgint", "kernel.json"), "w") as f:
            json.dump({"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "Interrupted by message", "language": "python",
                       "interrupt_mode": "message"}, f)
        self.reactor = FakeProcessReactor()
        launcher = KernelLauncher(
            self.reactor, os.path.join(root, "runtime"),
            spec_manager=KernelSpecManager(kernel_dirs=[os.path.join(root, "kernels")],
                                           ensure_native_kernel=False))
        self.channels = ChannelsFactory()
        self.supervisor = KernelSupervisor(
            "k1", "msgint", KernelConversation("k1", lambda sub, output: None), launcher,
            self.channels, self.reactor, lambda event, reason: None)

    def test_kernelspec_interrupt_mode_message_is_obeyed(self):
        """A kernelspec with interrupt_mode 'message' is interrupted with interrupt_request."""
        d = self.supervisor.start()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.successResultOf(d)
        self.supervisor.interrupt()
        process = self.reactor.spawned[-1].process
        self.assertEqual(process.signals, [])
        self.assertEqual(self.channels.last.sent[-1][1]["msg_type"], "interrupt_request")


# -- KernelHost on a MemoryRouter -------------------------------------------------------


class KernelHostTestCase(SynchronousTestCase):
    """A KernelHost attached to a MemoryRouter, with the fake launcher and channels."""

    max_kernels = 2

    def setUp(self):
        self.memory = MemoryRouter(realm="webkernel")
        self.clock = self.memory.clock
        self.launcher = FakeLauncher()
        self.channels = ChannelsFactory()
        self.host = KernelHost(types.ComponentConfig(realm="webkernel"), self.launcher,
                               self.channels, self.clock, max_kernels=self.max_kernels)
        attach(self.memory.router, self.host, Principal("host", KERNEL_HOST_ROLE, "local"),
               self.clock)
        self.settle()
        self.successResultOf(self.host.joined)
        self.client = self.memory.joined()
        self.requests = 0

    def settle(self):
        """Run what is due now on the clock (deliveries to the host) until nothing is."""
        run_due(self.clock)

    def call(self, procedure, args=None, progress=False, **kwargs):
        """CALL *procedure*; return the messages the client got for it, after settling."""
        self.requests += 1
        self.client.send(message.Call(self.requests, procedure, args=args, kwargs=kwargs or None,
                                      receive_progress=progress or None))
        self.settle()
        return [m for m in self.client.take() if getattr(m, "request", None) == self.requests]

    def result(self, procedure, *args, **kwargs):
        """The kwargs (or single arg) of the one RESULT a call gets."""
        answer = self.call(procedure, list(args) or None, **kwargs)
        self.assertEqual(len(answer), 1, answer)
        self.assertIsInstance(answer[0], message.Result, answer[0])
        return answer[0].kwargs or answer[0].args[0]

    def error(self, procedure, *args, **kwargs):
        """The ERROR a call gets."""
        answer = self.call(procedure, list(args) or None, **kwargs)
        self.assertIsInstance(answer[-1], message.Error, answer)
        return answer[-1]

    def start(self):
        """Start a kernel through the API and make it ready; its model."""
        self.requests += 1
        self.client.send(message.Call(self.requests, uris.KERNELS_START))
        self.settle()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        model = [m for m in self.client.take() if getattr(m, "request", None) == self.requests]
        self.assertIsInstance(model[0], message.Result, model)
        return model[0].args[0]

    def kernel_call(self, kernel_id, name, *args, **kwargs):
        self.requests += 1
        self.client.send(message.Call(self.requests, uris.kernel_procedure(kernel_id, name),
                                      args=list(args) or None, kwargs=kwargs or None))
        self.settle()
        return self.requests

    def shut_down(self, kernel_id):
        """Call the kernel's shutdown, its process exits; check the call's RESULT and that no kernel is listed."""
        call_id = self.kernel_call(kernel_id, "shutdown")
        self.launcher.launched[-1].exit(0)
        self.settle()
        answer = [m for m in self.client.take() if getattr(m, "request", None) == call_id]
        self.assertIsInstance(answer[0], message.Result, answer)
        self.assertEqual(self.result(uris.KERNELS_LIST), [])


class KernelHostTests(KernelHostTestCase):
    """The WAMP API of docs/kernels.md, end to end through the router."""

    def test_kernelspecs_and_start_gives_a_ready_model(self):
        """kernels.start answers with the model once the kernel is ready; list shows it."""
        self.assertEqual(self.result(uris.KERNELSPECS)["default"], "python3")
        model = self.start()
        self.assertRegex(model["id"], r"^[0-9a-f]{32}$")
        self.assertEqual((model["name"], model["execution_state"], model["reason"]),
                         ("python3", "idle", None))
        self.assertEqual(model["owner"], self.client.session.authid)
        self.assertEqual(model["created"], "1970-01-01T00:00:00.000Z")
        self.assertEqual([k["id"] for k in self.result(uris.KERNELS_LIST)], [model["id"]])
        self.assertEqual(self.launcher.launched[0].kernel_id, model["id"])

    def test_execute_with_progress(self):
        """execute with receive_progress: each output as a progressive RESULT, then the final one."""
        kernel_id = self.start()["id"]
        self.requests += 1
        call_id = self.requests
        self.client.send(message.Call(call_id, uris.kernel_procedure(kernel_id, "execute"),
                                      args=["print('hi'); 6*7"], receive_progress=True))
        self.settle()
        channels = self.channels.last
        request = sent(channels, "execute_request")
        self.assertEqual(request["content"]["code"], "print('hi'); 6*7")
        self.assertTrue(request["content"]["allow_stdin"])
        run_execute(channels, request, [stream("hi\n"),
                                        ("execute_result", {"data": {"text/plain": "42"},
                                                            "execution_count": 1, "metadata": {}})])
        self.settle()
        results = [m for m in self.client.take() if getattr(m, "request", None) == call_id]
        self.assertTrue(all(isinstance(m, message.Result) for m in results), results)
        self.assertEqual([bool(m.progress) for m in results], [True] * 4 + [False])
        progressive = [m.kwargs for m in results[:-1]]
        final = results[-1].kwargs
        self.assertEqual([o["msg_type"] for o in progressive],
                         ["status", "stream", "execute_result", "status"])
        self.assertEqual(final["outputs"], progressive)
        self.assertEqual((final["status"], final["execution_count"], final["msg_id"]),
                         ("ok", 1, request["msg_id"]))
        self.assertEqual(progressive[0]["caller"],
                         {"session": self.client.session.id, "authid": self.client.session.authid,
                          "authrole": "anonymous"})

    def test_comm_message_goes_on_shell_and_ends_at_idle(self):
        """comm sends comm_msg on shell as given; the kernel's iopub answer is progress; the call ends at idle."""
        kernel_id = self.start()["id"]
        self.requests += 1
        call_id = self.requests
        content = {"comm_id": "c1", "data": {"method": "update", "state": {"value": 7}}}
        self.client.send(message.Call(call_id, uris.kernel_procedure(kernel_id, "comm"),
                                      args=["comm_msg", content],
                                      kwargs={"metadata": {"version": "2.1.0"},
                                              "buffers": [b"\x00\x01"]},
                                      receive_progress=True))
        self.settle()
        channels = self.channels.last
        request = sent(channels, "comm_msg", channel="shell")
        self.assertEqual((request["content"], request["metadata"], request["buffers"]),
                         (content, {"version": "2.1.0"}, [b"\x00\x01"]))
        channels.publish("status", {"execution_state": "busy"}, parent=request)
        channels.publish("comm_msg", {"comm_id": "c1", "data": {"method": "echo_update"}},
                         parent=request)
        self.settle()
        self.assertEqual([bool(m.progress) for m in self.client.take()
                          if getattr(m, "request", None) == call_id], [True, True])
        channels.publish("status", {"execution_state": "idle"}, parent=request)
        self.settle()
        idle, final = [m for m in self.client.take() if getattr(m, "request", None) == call_id]
        self.assertEqual((idle.progress, idle.kwargs["msg_type"]), (True, "status"))
        self.assertFalse(final.progress)
        self.assertEqual(final.kwargs["msg_id"], request["msg_id"])
        self.assertEqual([o["msg_type"] for o in final.kwargs["outputs"]],
                         ["status", "comm_msg", "status"])

    def test_comm_arguments_are_checked(self):
        """Only comm messages, JSON content with a comm_id (and a target_name to open), binary buffers."""
        kernel_id = self.start()["id"]
        procedure = uris.kernel_procedure(kernel_id, "comm")
        for args, kwargs in ((["execute_request", {"comm_id": "c"}], {}),
                             (["comm_msg", {"data": {}}], {}),
                             (["comm_open", {"comm_id": "c"}], {}),
                             (["comm_msg", {"comm_id": "c", "data": {"x": float("nan")}}], {}),
                             (["comm_msg", "not an object"], {}),
                             (["comm_msg", {"comm_id": "c"}], {"buffers": ["text"]}),
                             (["comm_msg", {"comm_id": "c"}], {"buffers": [b""] * 65})):
            error = self.error(procedure, *args, **kwargs)
            self.assertEqual(error.error, "wamp.error.invalid_argument", (args, kwargs))
        self.assertEqual([m for _, m in self.channels.last.sent if m["msg_type"].startswith("comm")],
                         [])

    def test_comm_info_asks_the_kernel(self):
        """comm_info sends comm_info_request (with the target_name) and answers its reply's content."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "comm_info", target_name="jupyter.widget")
        request = sent(self.channels.last, "comm_info_request")
        self.assertEqual(request["content"], {"target_name": "jupyter.widget"})
        comms = {"c1": {"target_name": "jupyter.widget"}}
        self.channels.last.reply("shell", request, "comm_info_reply", {"status": "ok", "comms": comms})
        self.settle()
        (answer,) = [m for m in self.client.take() if getattr(m, "request", None) == call_id]
        self.assertEqual(answer.args[0]["comms"], comms)

    def test_eval_cell_returns_text_plain(self):
        """eval_cell answers with the text/plain of the execute_result."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "eval_cell", "2+3")
        request = sent(self.channels.last, "execute_request")
        self.assertFalse(request["content"]["allow_stdin"])
        run_execute(self.channels.last, request,
                    [("execute_result", {"data": {"text/plain": "5"}, "execution_count": 1})])
        self.settle()
        answer = [m for m in self.client.take() if getattr(m, "request", None) == call_id]
        self.assertEqual(answer[0].args, ["5"])

    def test_eval_cell_error_is_execution_failed(self):
        """Code that raises gives execution_failed with ename, evalue, traceback."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "eval_cell", "1/0")
        run_execute(self.channels.last, sent(self.channels.last, "execute_request"), status="error")
        self.settle()
        error = [m for m in self.client.take() if getattr(m, "request", None) == call_id][0]
        self.assertEqual(error.error, errors.EXECUTION_FAILED)
        self.assertEqual((error.kwargs["ename"], error.kwargs["traceback_lines"], error.kwargs["traceback"]),
                         ("ZeroDivisionError", ["tb"], "tb"))

    def test_execution_failed_prints_in_a_stock_autobahn_client(self):
        """The ERROR's kwargs make a stock Autobahn ApplicationError printable (its traceback a string)."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "eval_cell", "1/0")
        run_execute(self.channels.last, sent(self.channels.last, "execute_request"), status="error")
        self.settle()
        error = [m for m in self.client.take() if getattr(m, "request", None) == call_id][0]
        printed = str(ApplicationError(error.error, *error.args, **error.kwargs))
        self.assertIn("ZeroDivisionError: division by zero", printed)
        self.assertTrue(printed.endswith(":\ntb\n"), printed)

    def test_outputs_and_input_procedures(self):
        """outputs returns the history window; input without a pending request is no_pending_input."""
        kernel_id = self.start()["id"]
        self.kernel_call(kernel_id, "execute", "1")
        run_execute(self.channels.last, sent(self.channels.last, "execute_request"))
        self.settle()
        window = self.result(uris.kernel_procedure(kernel_id, "outputs"), since=1)
        self.assertEqual([o["seq"] for o in window["outputs"]], [2])
        self.assertTrue(window["complete"])
        error = self.error(uris.kernel_procedure(kernel_id, "input"), "x")
        self.assertEqual(error.error, errors.NO_PENDING_INPUT)

    def test_unknown_kernel(self):
        """A call for a kernel no host has gets no_such_kernel."""
        error = self.error(uris.kernel_procedure("0" * 32, "execute"), "1")
        self.assertEqual(error.error, errors.NO_SUCH_KERNEL)
        self.assertIn("0" * 32, error.args[0])

    def test_unknown_kernelspec(self):
        """start with a kernelspec that is not installed gets no_such_kernelspec, listing those that are."""
        error = self.error(uris.KERNELS_START, kernel_name="cobol")
        self.assertEqual(error.error, errors.NO_SUCH_KERNELSPEC)
        self.assertIn("python3", error.args[0])
        self.assertEqual(self.launcher.launched, [])

    def test_kernel_limit(self):
        """A start beyond max_kernels gets kernel_limit; starting kernels count."""
        self.start()
        self.result(uris.KERNELS_START, wait=False)
        error = self.error(uris.KERNELS_START)
        self.assertEqual(error.error, errors.KERNEL_LIMIT)
        self.assertEqual(len(self.launcher.launched), 2)

    def test_call_while_starting_is_kernel_not_ready(self):
        """A request to a kernel that is still starting gets kernel_not_ready."""
        model = self.result(uris.KERNELS_START, wait=False)
        self.assertEqual(model["execution_state"], "starting")
        error = self.error(uris.kernel_procedure(model["id"], "execute"), "1")
        self.assertEqual(error.error, errors.KERNEL_NOT_READY)

    def test_call_while_restarting_is_kernel_not_ready(self):
        """After the process died and while it restarts, a request gets kernel_not_ready."""
        kernel_id = self.start()["id"]
        self.launcher.launched[-1].exit(1)
        self.settle()
        error = self.error(uris.kernel_procedure(kernel_id, "eval_cell"), "1")
        self.assertEqual(error.error, errors.KERNEL_NOT_READY)

    def test_failed_restart_is_kernel_start_failed_and_dead(self):
        """restart whose new kernel exits while starting: kernel_start_failed, and the kernel is dead."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "restart")
        self.launcher.launched[-1].exit(0)
        self.settle()
        self.launcher.launched[-1].exit(1)
        self.settle()
        error = [m for m in self.client.take() if getattr(m, "request", None) == call_id][0]
        self.assertEqual(error.error, errors.KERNEL_START_FAILED)
        self.assertEqual(self.result(uris.KERNELS_LIST)[0]["execution_state"], "dead")

    def test_kernel_died_while_call_pending(self):
        """A pending execute fails with kernel_died when the process exits."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "execute", "import os; os._exit(1)")
        self.launcher.launched[-1].exit(1)
        self.settle()
        error = [m for m in self.client.take() if getattr(m, "request", None) == call_id][0]
        self.assertEqual(error.error, errors.KERNEL_DIED)

    def test_exit_while_starting_is_kernel_start_failed(self):
        """A kernel that exits before it is ready fails the start with kernel_start_failed."""
        self.requests += 1
        self.client.send(message.Call(self.requests, uris.KERNELS_START))
        self.settle()
        self.launcher.launched[-1].exit(1)
        self.settle()
        error = self.client.take()[-1]
        self.assertEqual(error.error, errors.KERNEL_START_FAILED)
        self.assertIn("exited while starting", error.args[0])
        self.assertEqual(self.result(uris.KERNELS_LIST), [])

    def test_shutdown_unregisters_and_forgets(self):
        """shutdown answers once the process is gone; the kernel's procedures go with it."""
        kernel_id = self.start()["id"]
        self.shut_down(kernel_id)
        error = self.error(uris.kernel_procedure(kernel_id, "eval_cell"), "1")
        self.assertEqual(error.error, errors.NO_SUCH_KERNEL)

    def test_cancel_interrupts_the_kernel(self):
        """CANCEL of an execute fails the call with canceled and interrupts the kernel."""
        kernel_id = self.start()["id"]
        call_id = self.kernel_call(kernel_id, "execute", "while True: pass")
        self.client.send(message.Cancel(call_id))
        self.settle()
        error = [m for m in self.client.take() if getattr(m, "request", None) == call_id][0]
        self.assertEqual(error.error, "wamp.error.canceled")
        self.assertEqual(self.launcher.launched[-1].signals, ["INT"])

    def test_events_on_kernels_events(self):
        """Lifecycle and state changes are published on webkernel.kernels.events."""
        watcher = self.memory.joined()
        watcher.send(message.Subscribe(1, uris.KERNELS_EVENTS))
        watcher.take()
        kernel_id = self.start()["id"]
        self.kernel_call(kernel_id, "execute", "1")
        run_execute(self.channels.last, sent(self.channels.last, "execute_request"))
        self.launcher.launched[-1].exit(1)
        self.settle()
        events = [(m.kwargs["event"], m.kwargs["kernel"]["execution_state"])
                  for m in watcher.take() if isinstance(m, message.Event)]
        self.assertEqual(events, [("started", "starting"), ("ready", "idle"), ("state", "busy"),
                                  ("state", "idle"), ("dead", "dead"), ("restarting", "restarting")])

    def test_output_topics(self):
        """Each output is published on webkernel.kernel.<id>.iopub.<msg_type>."""
        kernel_id = self.start()["id"]
        self.client.send(message.Subscribe(1000, uris.kernel_topic(kernel_id, "iopub"),
                                           match="prefix"))
        self.client.take()
        self.kernel_call(kernel_id, "execute", "print(1)")
        run_execute(self.channels.last, sent(self.channels.last, "execute_request"), [stream("1\n")])
        self.settle()
        events = [m for m in self.client.take() if isinstance(m, message.Event)]
        self.assertEqual([(e.topic, e.kwargs["seq"]) for e in events],
                         [(uris.kernel_topic(kernel_id, "iopub." + t), n) for n, t in
                          enumerate(["status", "stream", "status"], start=1)])
