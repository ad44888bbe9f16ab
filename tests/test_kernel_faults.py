"""Faults with real ipykernel kernels behind the real service: the promises of docs/reliability.md.

* A kernel killed (SIGKILL) or stopped (SIGSTOP) mid-execution: the caller gets
  ``kernel_died`` within seconds, watchers see dead, restarting, restarted.
* The service killed (SIGKILL) and started again on the same ``--kernel-dir``:
  running kernels are re-attached with their variables, ids and numbering;
  a kernel that died meanwhile is cleaned up; nothing is left at the end.
* ``--keep-kernels``: a clean stop leaves kernels for the next start.

A kernel's pid comes from its metadata file. Every wait is bounded; nothing sleeps.
"""

import json
import os
import shutil
import signal
import stat
import tempfile
import time

import pytest
import psutil
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer, reactor, threads
from twisted.trial.unittest import TestCase

from tests.service import ServiceProcess
from tests.test_kernels import Collector, kernel_uri
from tests.twisted_wamp import joined, leave

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

REALM = "webkernel"
KERNEL_TIMEOUT = 60
#: what "within a few seconds" means for noticing a killed or hung kernel
NOTICED_WITHIN = 5.0
LOOP = "print('looping', flush=True)\nwhile True: pass"


def metadata(kernel_dir, kernel_id):
    with open(os.path.join(kernel_dir, f"kernel-{kernel_id}.meta.json")) as f:
        return json.load(f)


def running(pid):
    """Whether *pid* is a live process (a zombie nobody reaped yet is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid, timeout=15):
    """Wait (in a thread, bounded) until *pid* no longer runs; whether it is gone.

    A killed kernel that is not our child may stay a zombie (PID 1 of a
    container need not reap): that counts as gone.
    """
    def wait():
        deadline = time.monotonic() + timeout
        while running(pid) and time.monotonic() < deadline:
            try:
                psutil.Process(pid).wait(0.1)
            except (psutil.TimeoutExpired, psutil.NoSuchProcess):
                pass
        return not running(pid)
    return threads.deferToThread(wait)


class FaultTestCase(TestCase):
    """Helpers: services on one kernel directory, a client, calls and event collectors."""

    timeout = 180

    def setUp(self):
        self.kernel_dir = tempfile.mkdtemp(prefix="webkernel-faults-")
        self.services = []

    def tearDown(self):
        for service in self.services:
            service.stop(timeout=30)
            print(f"--- log of service {service.process.pid} ---\n{service.log()}")  # shown on failure
        for name in os.listdir(self.kernel_dir):  # a failed test must not leave kernels running
            if name.endswith(".meta.json"):
                pid = json.load(open(os.path.join(self.kernel_dir, name))).get("pid")
                if pid and running(pid):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.kernel_dir, ignore_errors=True)

    def service(self, *args, heartbeat_interval="1"):
        """A service on the test's kernel directory (heartbeats every second unless told)."""
        service = ServiceProcess("--anonymous", "--kernel-dir", self.kernel_dir,
                                 "--heartbeat-interval", heartbeat_interval, *args)
        self.services.append(service)
        return service

    @defer.inlineCallbacks
    def client(self, service):
        session = yield joined(service, realm=REALM)
        self.addCleanup(lambda: leave(session) if session.is_attached() else None)
        events = Collector()
        yield session.subscribe(events, "webkernel.kernels.events")
        return session, events

    def call(self, session, kernel_id, name, *args, **kwargs):
        return session.call(kernel_uri(kernel_id, name), *args, **kwargs).addTimeout(
            KERNEL_TIMEOUT, reactor)

    def start(self, session):
        return session.call("webkernel.kernels.start").addTimeout(KERNEL_TIMEOUT, reactor)

    @defer.inlineCallbacks
    def watch(self, session, kernel_id):
        watcher = Collector()
        yield session.subscribe(watcher, f"webkernel.kernel.{kernel_id}.iopub",
                                options=SubscribeOptions(match="prefix"))
        return watcher

    @defer.inlineCallbacks
    def assert_dies_and_restarts(self, session, events, kernel_id, kill, reason):
        """Run a loop, *kill()* the kernel: kernel_died within seconds, then dead, restarting, restarted."""
        watcher = yield self.watch(session, kernel_id)
        running_loop = self.call(session, kernel_id, "execute", LOOP)
        yield watcher.until(lambda e: e["msg_type"] == "stream", timeout=KERNEL_TIMEOUT)
        killed_at = reactor.seconds()
        kill()
        error = yield self.assertFailure(running_loop, ApplicationError)
        self.assertLess(reactor.seconds() - killed_at, NOTICED_WITHIN)
        self.assertEqual(error.error, "webkernel.error.kernel_died")
        self.assertIn(reason, error.args[0])
        for name in ("dead", "restarting", "restarted"):
            yield events.until(lambda e, n=name: e["event"] == n and e["kernel"]["id"] == kernel_id,
                               timeout=KERNEL_TIMEOUT)
        self.assertEqual((yield self.call(session, kernel_id, "eval_cell", "6*7")), "42")


class KernelDeathTests(FaultTestCase):
    """A kernel killed or hung while it runs code."""

    @defer.inlineCallbacks
    def test_sigkill_mid_execution(self):
        """SIGKILL while `while True: pass` runs: kernel_died within seconds, then dead/restarting/restarted."""
        session, events = yield self.client(self.service())
        kernel_id = (yield self.start(session))["id"]
        pid = metadata(self.kernel_dir, kernel_id)["pid"]
        yield self.assert_dies_and_restarts(session, events, kernel_id,
                                            lambda: os.kill(pid, signal.SIGKILL), "exited")
        self.assertNotEqual(metadata(self.kernel_dir, kernel_id)["pid"], pid)

    @defer.inlineCallbacks
    def test_sigstop_is_detected_by_heartbeat(self):
        """SIGSTOP: missed heartbeats make it dead (kernel_died), the hung process is killed, a new one runs."""
        session, events = yield self.client(self.service(heartbeat_interval="0.5"))
        kernel_id = (yield self.start(session))["id"]
        pid = metadata(self.kernel_dir, kernel_id)["pid"]
        yield self.assert_dies_and_restarts(session, events, kernel_id,
                                            lambda: os.kill(pid, signal.SIGSTOP), "heartbeats")
        self.assertTrue((yield wait_gone(pid)))


class ServiceRestartTests(FaultTestCase):
    """The service killed, or stopped with --keep-kernels, and started again on the same directory."""

    @defer.inlineCallbacks
    def reattached(self, service, kernel_id):
        """A client of *service* once kernel *kernel_id* is re-attached (bounded)."""
        session, events = yield self.client(service)
        kernels = yield session.call("webkernel.kernels.list")
        model = [k for k in kernels if k["id"] == kernel_id]
        if not model or model[0]["execution_state"] == "starting":
            event = yield events.until(lambda e: e["event"] == "reattached"
                                       and e["kernel"]["id"] == kernel_id, timeout=KERNEL_TIMEOUT)
            model = [event["kernel"]]
        return session, events, model[0]

    @defer.inlineCallbacks
    def test_reattach_after_the_service_is_killed(self):
        """SIGKILL of the service: a busy kernel keeps its variables, id and numbering; a dead one is cleaned up."""
        first = self.service()
        session, _events = yield self.client(first)
        kept, lost = yield defer.gatherResults([self.start(session), self.start(session)])
        yield self.call(session, kept["id"], "eval_cell", "x = 41")
        watcher = yield self.watch(session, kept["id"])
        self.call(session, kept["id"], "execute", LOOP).addErrback(lambda f: None)  # busy at the crash
        yield watcher.until(lambda e: e["msg_type"] == "stream", timeout=KERNEL_TIMEOUT)
        last_seq = max(e["seq"] for e in watcher.events)
        record = metadata(self.kernel_dir, kept["id"])
        self.assertEqual((record["kernel_id"], record["kernel_name"], record["created"]),
                         (kept["id"], "python3", kept["created"]))
        self.assertGreaterEqual(record["seq_reserved"], last_seq)
        for suffix in (".json", ".meta.json"):
            path = os.path.join(self.kernel_dir, f"kernel-{kept['id']}{suffix}")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        kept_pid, lost_pid = record["pid"], metadata(self.kernel_dir, lost["id"])["pid"]

        first.process.kill()  # with the client still connected: leaving would cancel the loop
        first.process.wait(15)
        self.assertTrue(running(kept_pid), "the kernel died with the service")
        os.kill(lost_pid, signal.SIGKILL)  # one dies while no service watches it
        self.assertTrue((yield wait_gone(lost_pid)))

        second = self.service()
        session, events, model = yield self.reattached(second, kept["id"])
        self.assertEqual((model["id"], model["created"]), (kept["id"], kept["created"]))
        watcher = yield self.watch(session, kept["id"])
        yield self.call(session, kept["id"], "interrupt")  # the loop of before the crash
        interrupted = yield watcher.until(lambda e: e["msg_type"] == "error", timeout=KERNEL_TIMEOUT)
        self.assertEqual(interrupted["content"]["ename"], "KeyboardInterrupt")
        self.assertGreater(interrupted["seq"], last_seq)
        yield watcher.until(lambda e: e["content"].get("execution_state") == "idle"
                            and e["parent_msg_id"] == interrupted["parent_msg_id"])
        self.assertEqual((yield self.call(session, kept["id"], "eval_cell", "x + 1")), "42")
        result = yield self.call(session, kept["id"], "execute", "print('after', flush=True)")
        seqs = [o["seq"] for o in result.kwresults["outputs"]]
        self.assertGreater(seqs[0], last_seq)
        history = (yield self.call(session, kept["id"], "outputs", since=last_seq)).kwresults
        self.assertEqual(history["outputs"][0]["seq"], history["first_seq"])
        self.assertEqual(history["complete"], history["first_seq"] == last_seq + 1)
        self.assertFalse((yield self.call(session, kept["id"], "outputs", since=0)).kwresults["complete"])
        listed = [k["id"] for k in (yield session.call("webkernel.kernels.list"))]
        self.assertEqual(listed, [kept["id"]])
        self.assertFalse([n for n in os.listdir(self.kernel_dir) if lost["id"] in n])

        # the re-attached kernel is not the service's child: its death is noticed by polling
        yield self.assert_dies_and_restarts(session, events, kept["id"],
                                            lambda: os.kill(kept_pid, signal.SIGKILL), "gone")
        new_pid = metadata(self.kernel_dir, kept["id"])["pid"]
        yield self.call(session, kept["id"], "shutdown")
        yield leave(session)
        second.stop(timeout=30)
        self.assertFalse(running(kept_pid) or running(new_pid))
        self.assertEqual(os.listdir(self.kernel_dir), [])

    @defer.inlineCallbacks
    def test_keep_kernels_on_clean_stop(self):
        """--keep-kernels: SIGTERM leaves the kernel and its files; the next start re-attaches it, gap-free."""
        first = self.service("--keep-kernels")
        session, _events = yield self.client(first)
        kernel = yield self.start(session)
        result = yield self.call(session, kernel["id"], "execute", "y = 'kept'; print(y, flush=True)")
        last_seq = result.kwresults["outputs"][-1]["seq"]
        pid = metadata(self.kernel_dir, kernel["id"])["pid"]
        yield leave(session)
        first.stop(timeout=30)
        self.assertTrue(running(pid))
        self.assertEqual(metadata(self.kernel_dir, kernel["id"])["seq_reserved"], last_seq)

        second = self.service()
        session, _events, model = yield self.reattached(second, kernel["id"])
        self.assertEqual(model["id"], kernel["id"])
        self.assertEqual((yield self.call(session, kernel["id"], "eval_cell", "y")), "'kept'")
        history = (yield self.call(session, kernel["id"], "outputs", since=last_seq)).kwresults
        self.assertEqual((history["first_seq"], history["complete"]), (last_seq + 1, True))
        yield leave(session)
        second.stop(timeout=30)  # without --keep-kernels: the adopted kernel is shut down too
        self.assertTrue((yield wait_gone(pid)))
        self.assertEqual(os.listdir(self.kernel_dir), [])
