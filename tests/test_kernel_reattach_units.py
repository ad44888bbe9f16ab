"""Re-attaching kernels after a restart, with fakes: records, adoption, supervisor, host, service.

The kernel directory is a real temporary directory (its files are what is
being tested); processes are FakeLaunchedKernels, except where the test is
about recognising a real process (``kernel_process_running``, ``adopt``);
time is a ``task.Clock``.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import pytest
from autobahn.wamp import message, types
from twisted.internet import defer, task
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from broker import tap
from broker.auth import KERNEL_HOST_ROLE, Principal
from broker.kernel import records, uris
from broker.kernel.adoption import AdoptedKernel, kernel_process_running
from broker.kernel.errors import KernelGone
from broker.kernel.history import OutputHistory
from broker.kernel.host import KernelHost
from broker.kernel.launcher import KernelLauncher
from broker.kernel.records import KernelRecord, KernelRecordFile, KernelRecords
from broker.kernel.service import KernelHostService
from broker.kernel.session import KernelConversation
from broker.kernel.supervisor import KernelDied, KernelShutDown, KernelSupervisor
from broker.kernel.testing import FakeProcessReactor
from broker.router.local import attach
from broker.testing import MemoryRouter, run_due
from tests.test_kernel_host_units import (
    KERNEL_INFO,
    ChannelsFactory,
    FakeLauncher,
    run_execute,
    sent,
    stream,
)

KERNEL_ID = "0123456789abcdef0123456789abcdef"
OTHER_ID = "fedcba9876543210fedcba9876543210"


class KernelDirTestCase(SynchronousTestCase):
    """A fresh kernel directory and its KernelRecords."""

    def setUp(self):
        self.kernel_dir = tempfile.mkdtemp(prefix="webkernel-records-")
        self.addCleanup(shutil.rmtree, self.kernel_dir, ignore_errors=True)
        self.records = KernelRecords(self.kernel_dir)

    def path(self, kernel_id, suffix):
        return os.path.join(self.kernel_dir, f"kernel-{kernel_id}{suffix}")

    def leave_kernel(self, kernel_id=KERNEL_ID, pid=777, seq_reserved=1000, owner="ada",
                     shared=None, pooled=False):
        """Files as a crashed service leaves them: record and connection file."""
        self.records.write(KernelRecord(kernel_id, "python3", owner, "2020-01-02T03:04:05.000Z",
                                        pid=pid, seq_reserved=seq_reserved, shared=shared or {},
                                        pooled=pooled))
        with open(self.path(kernel_id, ".json"), "w") as f:
            json.dump({"key": "k"}, f)
        open(self.path(kernel_id, ".log"), "w").close()


# -- the files ------------------------------------------------------------------


class KernelRecordsTests(KernelDirTestCase):
    """The per-kernel files of the kernel directory."""

    def test_write_is_private_and_atomic(self):
        """The metadata file is 0600, holds the record, and a rewrite replaces it whole."""
        record = KernelRecord(KERNEL_ID, "python3", "ada", "2020-01-02T03:04:05.000Z", pid=42)
        self.records.write(record)
        path = self.path(KERNEL_ID, ".meta.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        first_inode = os.stat(path).st_ino
        record.seq_reserved = 2000
        self.records.write(record)
        self.assertNotEqual(os.stat(path).st_ino, first_inode)  # renamed over, never rewritten
        self.assertEqual(self.records.read(KERNEL_ID), record)
        self.assertEqual(os.listdir(self.kernel_dir), [f"kernel-{KERNEL_ID}.meta.json"])

    def test_read_of_missing_or_broken_metadata_is_none(self):
        """No metadata, or metadata that is not a record, reads as None."""
        self.assertIsNone(self.records.read(KERNEL_ID))
        os.makedirs(self.kernel_dir, exist_ok=True)
        with open(self.path(KERNEL_ID, ".meta.json"), "w") as f:
            f.write('{"kernel_id": ')
        self.assertIsNone(self.records.read(KERNEL_ID))
        with open(self.path(KERNEL_ID, ".meta.json"), "w") as f:
            json.dump({"surprise": 1}, f)
        self.assertIsNone(self.records.read(KERNEL_ID))

    def test_claim_is_exclusive_until_released(self):
        """A kernel's lock is held by one claim at a time; releasing it frees it."""
        claim = self.records.claim(KERNEL_ID)
        self.assertIsNotNone(claim)
        self.assertIsNone(self.records.claim(KERNEL_ID))
        claim.release()
        claim.release()
        self.assertIsNotNone(self.records.claim(KERNEL_ID))

    @pytest.mark.integration
    def test_a_claim_dies_with_its_process(self):
        """A lock held by a process that is killed is free at once (a crashed service holds nothing)."""
        os.makedirs(self.kernel_dir, exist_ok=True)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, os, sys, time\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)",
             self.path(KERNEL_ID, ".lock")], stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.wait, 10)
        self.addCleanup(holder.kill)
        self.assertEqual(holder.stdout.readline(), "held\n")
        self.assertIsNone(self.records.claim(KERNEL_ID))
        holder.kill()
        holder.wait(10)
        self.assertIsNotNone(self.records.claim(KERNEL_ID))

    def test_remove_takes_a_pooled_kernels_sockets_and_private_directory(self):
        """A multi-user pooled kernel's ipc sockets and IPython directory in the kernel directory go with it."""
        prefix = records.ipc_prefix(self.kernel_dir, KERNEL_ID)
        self.leave_kernel(KERNEL_ID)
        with open(self.path(KERNEL_ID, ".json"), "w") as f:
            json.dump({"key": "k", "transport": "ipc", "ip": prefix, "shell_port": 1,
                       "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}, f)
        for n in range(1, 6):
            open(f"{prefix}-{n}", "w").close()
        os.makedirs(os.path.join(prefix + ".ipython", "profile_default"))
        self.records.remove(KERNEL_ID)
        self.assertEqual(os.listdir(self.kernel_dir), [])

    def test_kernel_ids_and_remove(self):
        """Every id with a file is listed; remove takes all four of its files and nothing else."""
        self.leave_kernel(KERNEL_ID)
        self.records.claim(KERNEL_ID).release()
        self.leave_kernel(OTHER_ID)
        open(os.path.join(self.kernel_dir, "notes.txt"), "w").close()
        self.assertEqual(self.records.kernel_ids(), {KERNEL_ID, OTHER_ID})
        self.records.remove(KERNEL_ID)
        self.assertEqual(sorted(os.listdir(self.kernel_dir)),
                         sorted(["notes.txt", f"kernel-{OTHER_ID}.json",
                                 f"kernel-{OTHER_ID}.meta.json", f"kernel-{OTHER_ID}.log"]))
        self.assertEqual(KernelRecords(os.path.join(self.kernel_dir, "none")).kernel_ids(), set())


class SeqReservationTests(KernelDirTestCase):
    """The seq high-water mark that lets numbering go on after a crash."""

    def record_file(self, block=10):
        record = KernelRecord(KERNEL_ID, "python3", "ada", "2020-01-02T03:04:05.000Z")
        return KernelRecordFile(self.records, record, self.records.claim(KERNEL_ID), block=block)

    def test_seqs_are_reserved_in_blocks_before_use(self):
        """The file always covers every seq handed out, written once per block."""
        record_file = self.record_file(block=10)
        writes = []
        self.patch(self.records, "write", lambda r: writes.append(r.seq_reserved))
        history = OutputHistory(reserve=record_file.reserve_seq)
        for expected_last in range(1, 26):
            history.append({"content": {"text": "x"}})
            self.assertGreaterEqual(writes[-1], expected_last)
        self.assertEqual(writes, [10, 20, 30])

    def test_a_history_started_after_a_seq_says_what_it_lacks(self):
        """A re-attached kernel's history numbers on from the mark; asking from before is incomplete."""
        history = OutputHistory(last_seq=1000)
        self.assertEqual(history.since(0), {"first_seq": 1001, "last_seq": 1000, "outputs": [],
                                            "complete": False})
        self.assertTrue(history.since(1000)["complete"])
        self.assertEqual(history.append({"content": {}})["seq"], 1001)

    def test_keep_writes_the_exact_last_seq_and_frees_the_kernel(self):
        """On a clean stop with --keep-kernels the mark is the last seq used, and the lock is let go."""
        record_file = self.record_file()
        record_file.reserve_seq(1)
        record_file.keep(7)
        self.assertEqual(self.records.read(KERNEL_ID).seq_reserved, 7)
        self.assertIsNotNone(self.records.claim(KERNEL_ID))

    def test_a_write_that_fails_is_logged_not_raised(self):
        """A full disk must not break the kernel's output: the failure is logged."""
        record_file = self.record_file()
        shutil.rmtree(self.kernel_dir)
        self.assertEqual(record_file.reserve_seq(1), 10)


# -- recognising and adopting a process -----------------------------------------------


def sleeper(*argv):
    """A real process whose command line holds *argv*, once it runs (the caller kills it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)", *argv],
        stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "up\n"
    return process


@pytest.mark.integration
class KernelProcessTests(KernelDirTestCase):
    """Whether a pid is still the kernel of a connection file."""

    def test_a_process_naming_the_connection_file_is_the_kernel(self):
        """A live process whose argv names the connection file is it; others, and dead pids, are not."""
        connection_file = self.path(KERNEL_ID, ".json")
        process = sleeper("-f", connection_file)
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.wait, 10)
        self.addCleanup(process.kill)
        self.assertTrue(kernel_process_running(process.pid, connection_file))
        self.assertFalse(kernel_process_running(process.pid, self.path(OTHER_ID, ".json")))
        self.assertFalse(kernel_process_running(os.getpid(), connection_file))
        self.assertFalse(kernel_process_running(None, connection_file))
        process.kill()
        process.wait(10)
        self.assertFalse(kernel_process_running(process.pid, connection_file))

    def test_launcher_adopts_a_running_kernel_only(self):
        """adopt gives an AdoptedKernel for a live kernel process, KernelGone otherwise."""
        reactor = FakeProcessReactor()
        launcher = KernelLauncher(reactor, self.kernel_dir)
        self.leave_kernel(pid=None)
        process = sleeper("-f", os.path.realpath(self.path(KERNEL_ID, ".json")))
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.wait, 10)
        self.addCleanup(process.kill)
        adopted = self.successResultOf(launcher.adopt("python3", KERNEL_ID, process.pid))
        self.assertIsInstance(adopted, AdoptedKernel)
        self.assertEqual((adopted.pid, adopted.connection_info), (process.pid, {"key": "k"}))
        adopted.stop_watching()
        self.failureResultOf(launcher.adopt("python3", KERNEL_ID, process.pid + 10 ** 6),
                             KernelGone)

    def test_a_running_kernel_without_connection_file_is_killed(self):
        """A kernel that cannot be reached is not left running without a way back."""
        launcher = KernelLauncher(FakeProcessReactor(), self.kernel_dir)
        process = sleeper("-f", os.path.realpath(self.path(KERNEL_ID, ".json")))
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.wait, 10)
        self.failureResultOf(launcher.adopt("python3", KERNEL_ID, process.pid), KernelGone)
        self.assertEqual(process.wait(10), -signal.SIGKILL)


class AdoptedKernelTests(SynchronousTestCase):
    """An adopted kernel's end comes from a poll; its signals from os.kill."""

    def setUp(self):
        self.clock = task.Clock()
        self.alive = True
        self.kills = []
        self.kernel = AdoptedKernel(
            KERNEL_ID, "python3", {"key": "k"}, "/nowhere/kernel.json", 4242, self.clock,
            poll_interval=1.0, running=lambda pid, path: self.alive,
            kill=lambda pid, sig: self.kills.append((pid, sig)))

    def test_exited_fires_when_the_poll_finds_it_gone(self):
        """While the process runs nothing fires; the first poll after it is gone fires exited."""
        self.clock.advance(5)
        self.assertNoResult(self.kernel.exited)
        self.alive = False
        self.clock.advance(1)
        self.assertEqual(str(self.successResultOf(self.kernel.exited)), "the process is gone")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_signals_go_to_the_kernel_only_while_it_is_the_kernel(self):
        """signal uses kill(pid, SIG…) while the pid is the kernel, and reports False after."""
        self.assertTrue(self.kernel.signal("INT"))
        self.assertEqual(self.kills, [(4242, signal.SIGINT)])
        self.assertRaises(ValueError, self.kernel.signal, "HUP")
        self.alive = False
        self.assertFalse(self.kernel.signal("KILL"))
        self.assertEqual(len(self.kills), 1)

    def test_stop_watching_ends_the_poll(self):
        """A kernel let go (--keep-kernels) is no longer polled."""
        self.kernel.stop_watching()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertNoResult(self.kernel.exited)


# -- the supervisor -------------------------------------------------------------------


class RecordingRecordFile:
    """Records what the supervisor tells a kernel's record file."""

    def __init__(self):
        self.calls = []

    def launched(self, pid):
        self.calls.append(("launched", pid))

    def reserve_seq(self, seq):
        return float("inf")

    def shared(self, shares):
        self.calls.append(("shared", dict(shares)))

    def keep(self, last_seq):
        self.calls.append(("keep", last_seq))

    def remove(self):
        self.calls.append(("remove",))


class SupervisorAdoptionTests(SynchronousTestCase):
    """A supervisor that takes over a running kernel."""

    def setUp(self):
        self.clock = task.Clock()
        self.launcher = FakeLauncher()
        self.channels = ChannelsFactory()
        self.conversation = KernelConversation("k1", lambda sub, output: None)
        self.events = []
        self.record_file = RecordingRecordFile()
        self.supervisor = KernelSupervisor(
            "k1", "python3", self.conversation, self.launcher, self.channels, self.clock,
            lambda event, reason: self.events.append(event), max_restarts=2,
            heartbeat_interval=0.5, record_file=self.record_file)
        self.launcher.running.add(555)
        self.adopted = self.successResultOf(self.launcher.adopt("python3", "k1", 555))

    def adopt(self):
        d = self.supervisor.adopt(self.adopted)
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.assertEqual(self.successResultOf(d), KERNEL_INFO)

    def test_adoption_asks_on_control_then_beats_the_heart(self):
        """The readiness nudge goes on control (a busy kernel answers there); heartbeats follow."""
        self.adopt()
        self.assertEqual(self.channels.last.nudge_channels, ["control"])
        self.assertEqual((self.supervisor.state, self.events), ("idle", []))
        self.assertEqual(len(self.channels.last.pings), 1)
        self.assertEqual(self.record_file.calls, [("launched", 555)])

    def test_death_of_an_adopted_kernel_is_a_fresh_launch(self):
        """When the adopted process is gone: pending requests fail, and a new kernel is launched."""
        self.adopt()
        pending = self.conversation.request("shell", "execute_request", {"code": "1"})
        self.adopted.exit()
        self.failureResultOf(pending, KernelDied)
        self.assertEqual(self.events, ["dead", "restarting"])
        relaunched = self.launcher.launched[-1]
        self.assertEqual(relaunched.kernel_id, "k1")
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.assertEqual(self.channels.last.nudge_channels, ["shell"])
        self.assertEqual(self.events, ["dead", "restarting", "restarted"])
        self.assertEqual(self.record_file.calls, [("launched", 555), ("launched", relaunched.pid)])

    def test_heartbeat_lost_kills_the_adopted_process(self):
        """An adopted kernel that stops answering heartbeats is dead, killed and replaced."""
        self.adopt()
        self.clock.pump([0.5, 0.5, 0.5])
        self.assertEqual(self.events, ["dead", "restarting"])
        self.assertEqual(self.adopted.signals, ["KILL"])

    def test_no_answer_kills_it_and_removes_its_files(self):
        """An adoption whose nudge fails kills the process and removes the kernel's files."""
        d = self.supervisor.adopt(self.adopted)
        self.channels.last.nudges[-1].errback(TimeoutError("not ready after 60 s"))
        self.failureResultOf(d)
        self.assertEqual(self.adopted.signals, ["KILL"])
        self.assertEqual(self.adopted.files_removed, 1)
        self.assertEqual(self.record_file.calls[-1], ("remove",))
        self.assertEqual(self.events, [])

    def test_detach_leaves_it_running_with_its_files(self):
        """detach: no signal, no shutdown_request, channels closed, record kept, later exit ignored."""
        self.adopt()
        pending = self.conversation.request("shell", "execute_request", {"code": "1"})
        channels = self.channels.last
        self.supervisor.detach()
        self.failureResultOf(pending, KernelShutDown)
        self.assertEqual(self.adopted.signals, [])
        self.assertNotIn("shutdown_request", [m["msg_type"] for _, m in channels.sent])
        self.assertTrue(channels.closed)
        self.assertFalse(self.adopted.watching)
        self.assertEqual(self.adopted.files_removed, 0)
        self.assertEqual(self.record_file.calls[-1], ("keep", 0))
        self.adopted.exit()
        self.assertEqual(self.events, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_final_death_removes_the_record(self):
        """After the last allowed restart a death is final: the kernel's files go."""
        self.adopt()
        for _ in range(2):
            (self.launcher.launched or [self.adopted])[-1].exit(1)
            self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.launcher.launched[-1].exit(1)
        self.assertEqual(self.supervisor.state, "dead")
        self.assertEqual(self.record_file.calls[-1], ("remove",))


# -- the host -------------------------------------------------------------------------


class HostReattachTestCase(KernelDirTestCase):
    """A KernelHost with records in a temporary kernel directory, on a MemoryRouter."""

    def setUp(self):
        super().setUp()
        self.memory = MemoryRouter(realm="webkernel")
        self.clock = self.memory.clock
        self.launcher = FakeLauncher()
        self.channels = ChannelsFactory()
        self.host = KernelHost(types.ComponentConfig(realm="webkernel"), self.launcher,
                               self.channels, self.clock, records=self.records)
        attach(self.memory.router, self.host, Principal("host", KERNEL_HOST_ROLE, "local"),
               self.clock)
        self.settle()
        self.client = self.memory.joined()
        self.client.send(message.Subscribe(1, uris.KERNELS_EVENTS))
        self.settle()
        self.client.take()
        self.requests = 1

    def settle(self):
        run_due(self.clock)

    def call(self, procedure, *args, **kwargs):
        self.requests += 1
        self.client.send(message.Call(self.requests, procedure, args=list(args) or None,
                                      kwargs=kwargs or None))
        self.settle()
        return [m for m in self.client.received if getattr(m, "request", None) == self.requests]

    def events(self):
        return [(m.kwargs["event"], m.kwargs["kernel"]) for m in self.client.take()
                if isinstance(m, message.Event)]

    def reattach(self):
        self.host.reattach_all()
        self.settle()

    def listed(self):
        return self.call(uris.KERNELS_LIST)[0].args[0]


class HostReattachTests(HostReattachTestCase):
    """KernelHost.reattach_all over the kernel directory."""

    def test_a_running_kernel_is_reattached_as_it_was(self):
        """Same id, owner and created; procedures registered; 'reattached'; numbering goes on."""
        self.leave_kernel(pid=777, seq_reserved=1000, owner="ada")
        self.launcher.running.add(777)
        self.reattach()
        self.assertEqual([k["execution_state"] for k in self.listed()], ["starting"])
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        (event, model), = [e for e in self.events() if e[0] != "state"]
        self.assertEqual(event, "reattached")
        self.assertEqual((model["id"], model["owner"], model["created"], model["execution_state"]),
                         (KERNEL_ID, "ada", "2020-01-02T03:04:05.000Z", "idle"))
        self.call(uris.kernel_procedure(KERNEL_ID, "execute"), "print(1)")
        run_execute(self.channels.last, sent(self.channels.last, "execute_request"),
                    [stream("1\n")])
        self.settle()
        window = self.call(uris.kernel_procedure(KERNEL_ID, "outputs"), since=0)[0].kwargs
        self.assertEqual((window["first_seq"], window["complete"]), (1001, False))
        self.assertEqual([o["seq"] for o in window["outputs"]], [1001, 1002, 1003])
        self.assertGreaterEqual(self.records.read(KERNEL_ID).seq_reserved, 1003)
        self.assertIsNone(self.records.claim(KERNEL_ID))  # this host holds it now

    def test_shares_are_kept_in_the_record_and_restored(self):
        """A share is written to the kernel's record at once; a re-attaching service restores it (and only valid ones)."""
        self.leave_kernel(pid=777, shared={"bob": "watch", "eve": "root", "": "full", "x" * 300: "full"})
        self.launcher.running.add(777)
        self.reattach()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        (event, model), = [e for e in self.events() if e[0] != "state"]
        self.assertEqual((event, model["shared"]), ("reattached", {"bob": "watch"}))
        self.call(uris.kernel_procedure(KERNEL_ID, "share"), "carl", access="full")
        self.assertEqual(self.records.read(KERNEL_ID).shared, {"bob": "watch", "carl": "full"})
        self.call(uris.kernel_procedure(KERNEL_ID, "unshare"), "bob")
        self.assertEqual(self.records.read(KERNEL_ID).shared, {"carl": "full"})

    def test_a_pooled_kernel_left_by_a_crash_is_killed_not_reattached(self):
        """A warm pool's kernel holds no one's work: the next service kills it and removes its files."""
        self.leave_kernel(pid=777, owner=None, pooled=True)
        self.launcher.running.add(777)
        self.reattach()
        (adopted,) = self.launcher.adopted
        self.assertEqual(adopted.signals, ["KILL"])
        self.assertEqual(self.records.kernel_ids(), set())
        self.assertEqual(self.listed(), [])
        self.assertEqual(self.events(), [])

    def test_a_pooled_kernel_already_gone_leaves_no_files(self):
        """A pooled kernel whose process is gone: its files are removed, nothing is killed."""
        self.leave_kernel(pid=778, owner=None, pooled=True)
        self.reattach()
        self.assertEqual((self.launcher.adopted, self.records.kernel_ids()), ([], set()))

    def test_a_handed_out_kernels_record_is_no_longer_pooled(self):
        """Handing out replaces the pooled record with the owner's: that kernel is re-attached after a crash."""
        from broker.kernel.pool import KernelPool
        self.host.pool = KernelPool(self.launcher, self.channels, self.clock, {"python3": 1},
                                    records=self.records)
        self.host.pool.start()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        pooled = self.launcher.launched[0]
        self.assertTrue(self.records.read(pooled.kernel_id).pooled)
        model = self.call(uris.KERNELS_START)[0].args[0]
        self.assertEqual(model["id"], pooled.kernel_id)
        record = self.records.read(pooled.kernel_id)
        self.assertEqual((record.pooled, record.pid, record.owner),
                         (False, pooled.pid, self.client.session.authid))
        self.host.pool.stop()

    def test_a_record_without_shares_is_read_as_none(self):
        """A record written before shares were kept has none."""
        self.leave_kernel()
        path = self.path(KERNEL_ID, ".meta.json")
        with open(path) as f:
            written = json.load(f)
        del written["shared"]
        with open(path, "w") as f:
            json.dump(written, f)
        self.assertEqual(self.records.read(KERNEL_ID).shared, {})

    def test_a_reattached_kernel_is_starting_until_its_procedures_are_registered(self):
        """Answering the nudge is not enough: idle only once calls can reach it."""
        self.leave_kernel(pid=777)
        self.launcher.running.add(777)
        self.reattach()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.assertEqual([k["execution_state"] for k in self.host.list_kernels()], ["starting"])
        self.settle()
        self.assertEqual([k["execution_state"] for k in self.host.list_kernels()], ["idle"])

    def test_a_dead_kernels_files_are_removed(self):
        """A recorded kernel whose process is gone: its files are removed, nothing is listed."""
        self.leave_kernel(pid=778)
        self.reattach()
        self.assertEqual(os.listdir(self.kernel_dir), [])
        self.assertEqual((self.listed(), self.events()), ([], []))

    def test_files_without_metadata_are_removed(self):
        """A connection file with no record (a crash while starting) is removed."""
        os.makedirs(self.kernel_dir, exist_ok=True)
        open(self.path(KERNEL_ID, ".json"), "w").close()
        self.reattach()
        self.assertEqual(os.listdir(self.kernel_dir), [])
        self.assertEqual(self.launcher.adopted, [])

    def test_a_kernel_held_by_a_running_service_is_left_alone(self):
        """Another live service's kernel (its lock held) is neither adopted nor removed."""
        self.leave_kernel(pid=777)
        self.launcher.running.add(777)
        held = self.records.claim(KERNEL_ID)
        self.addCleanup(held.release)
        self.reattach()
        self.assertEqual(self.launcher.adopted, [])
        self.assertEqual(len(os.listdir(self.kernel_dir)), 4)

    def test_a_kernel_that_does_not_answer_is_killed(self):
        """A kernel that runs but does not answer in time: killed, files removed, 'dead', unlisted."""
        self.leave_kernel(pid=777)
        self.launcher.running.add(777)
        self.reattach()
        self.channels.last.nudges[-1].errback(TimeoutError("not ready after 60 s"))
        self.settle()
        self.assertEqual(self.launcher.adopted[0].signals, ["KILL"])
        self.assertEqual(os.listdir(self.kernel_dir), [])
        self.assertEqual([e for e, _ in self.events()], ["dead"])
        self.assertEqual(self.listed(), [])

    def test_a_started_kernel_is_recorded_and_shut_down_without_trace(self):
        """A new kernel's record holds its pid; the host holds its lock; shutdown removes every file."""
        self.call(uris.KERNELS_START, wait=False)
        kernel_id = self.listed()[0]["id"]
        record = self.records.read(kernel_id)
        self.assertEqual((record.pid, record.kernel_name, record.owner),
                         (self.launcher.launched[-1].pid, "python3", self.client.session.authid))
        self.assertIsNone(self.records.claim(kernel_id))
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        self.call(uris.kernel_procedure(kernel_id, "shutdown"))
        self.launcher.launched[-1].exit(0)
        self.settle()
        self.assertEqual(os.listdir(self.kernel_dir), [])

    def test_detach_all_leaves_kernels_for_the_next_service(self):
        """detach_all: no signal, files kept with the pid, the lock released."""
        self.call(uris.KERNELS_START)
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        kernel_id = self.launcher.launched[-1].kernel_id
        self.assertEqual(self.host.detach_all(), 1)
        self.assertEqual(self.launcher.launched[-1].signals, [])
        self.assertEqual(self.records.read(kernel_id).pid, self.launcher.launched[-1].pid)
        self.assertIsNotNone(self.records.claim(kernel_id))
        self.assertEqual(self.host.kernels, {})


class KernelHostServiceTests(KernelDirTestCase):
    """The service re-attaches once joined, and --keep-kernels leaves kernels on stop."""

    def make_service(self, memory, keep_kernels):
        launcher = FakeLauncher()
        channels = ChannelsFactory()
        service = KernelHostService(memory.attach, "webkernel", memory.clock, self.kernel_dir,
                                    keep_kernels=keep_kernels, launcher=launcher,
                                    channels_factory=channels)
        return service, launcher, channels

    def settle(self, clock):
        run_due(clock)

    def adopted_kernel_service(self, keep_kernels):
        """A started service that found a kernel (pid 777) in its directory, adopted it, saw it ready.

        ``(service, launcher, channels, clock)``.
        """
        self.leave_kernel(pid=777)
        memory = MemoryRouter(realm="webkernel")
        service, launcher, channels = self.make_service(memory, keep_kernels)
        launcher.running.add(777)
        service.startService()
        self.settle(memory.clock)
        channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle(memory.clock)
        return service, launcher, channels, memory.clock

    def test_start_reattaches_and_keep_kernels_stop_keeps_them(self):
        """A started service adopts what it finds; stopped with keep_kernels it signals nothing."""
        service, launcher, _, _ = self.adopted_kernel_service(keep_kernels=True)
        self.assertEqual([k.pid for k in launcher.adopted], [777])
        self.successResultOf(defer.maybeDeferred(service.stopService))
        self.assertEqual(launcher.adopted[0].signals, [])
        self.assertEqual(self.records.read(KERNEL_ID).pid, 777)

    def test_stop_without_keep_kernels_shuts_adopted_kernels_down(self):
        """Without keep_kernels an adopted kernel is shut down like any other, files removed."""
        service, launcher, channels, clock = self.adopted_kernel_service(keep_kernels=False)
        stopped = defer.maybeDeferred(service.stopService)
        self.settle(clock)
        self.assertIn("shutdown_request", [m["msg_type"] for _, m in channels.last.sent])
        launcher.adopted[0].exit()
        self.settle(clock)
        self.successResultOf(stopped)
        self.assertEqual(os.listdir(self.kernel_dir), [])


class KernelOptionsTests(SynchronousTestCase):
    """--heartbeat-interval and --keep-kernels reach the kernel host service."""

    def kernel_service(self, *argv):
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-tap-")
        self.addCleanup(shutil.rmtree, kernel_dir, ignore_errors=True)
        options = tap.Options()
        options.parseOptions(["--kernel-dir", kernel_dir, *argv])
        top = tap.makeService(options, reactor=task.Clock())
        return [s for s in top if isinstance(s, KernelHostService)][0]

    def test_defaults(self):
        """Heartbeats every 3 s; a clean stop shuts kernels down."""
        service = self.kernel_service()
        self.assertEqual((service.options["heartbeat_interval"], service.keep_kernels), (3.0, False))

    def test_options(self):
        """A fractional heartbeat interval and --keep-kernels are taken; a non-positive interval is not."""
        service = self.kernel_service("--heartbeat-interval", "0.5", "--keep-kernels")
        self.assertEqual((service.options["heartbeat_interval"], service.keep_kernels), (0.5, True))
        for bad in ("0", "-1", "soon"):
            self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                              ["--heartbeat-interval", bad])
