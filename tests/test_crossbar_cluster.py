"""Scale-out under a real Crossbar.io: kernel hosts in their own processes join one realm.

Each test starts Crossbar.io (tests/crossbar.py) and two ``twistd webkernel
--router`` kernel hosts, and talks to the cluster as a client of Crossbar.io.
Skipped, with the reason, where Crossbar.io is not installed.
"""

import json
import os
import shutil
import signal
import tempfile
import urllib.request

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from broker import errors
from tests import crossbar
from tests.twisted_wamp import joined, leave

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))]

CALL = 60  # seconds: a bound on each call from the test (kernel starts on a loaded machine)


def _process_gone(pid):
    """The process ended (or is a zombie no one reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _kill_kernels(kernel_dir):
    """SIGKILL the kernels a killed host left running (their pids are in its kernel directory)."""
    for name in os.listdir(kernel_dir):
        if name.endswith(".meta.json"):
            with open(os.path.join(kernel_dir, name)) as meta:
                pid = json.load(meta).get("pid")
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class ClusterTestCase(TestCase):
    """Crossbar.io and two kernel hosts, each with its own kernel directory."""

    timeout = 240

    def start_node(self):
        work = tempfile.mkdtemp(prefix="webkernel-crossbar-")
        self.addCleanup(shutil.rmtree, work, True)
        self.node = crossbar.CrossbarNode(work).start()
        self.addCleanup(self.node.stop)

    def start_host(self, *args, env=None):
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-host-")
        host = crossbar.kernel_host(self.node, kernel_dir, *args, env=env)
        host.kernel_dir = kernel_dir
        self.addCleanup(host.stop)
        return host

    @defer.inlineCallbacks
    def client(self):
        session = yield joined(self.node, realm=crossbar.REALM)
        self.addCleanup(lambda: leave(session) if session.is_attached() else None)
        return session

    def call(self, session, uri, *args, **kwargs):
        return session.call(uri, *args, **kwargs).addTimeout(CALL, reactor)

    owner = staticmethod(crossbar.kernel_owner)


class RouterRestartTests(ClusterTestCase):
    """Hosts that lose Crossbar.io keep their kernels and register them again."""

    @defer.inlineCallbacks
    def test_kernels_survive_a_router_restart(self):
        """After Crossbar.io restarts, each kernel answers with its state and full history; a host stopped cleanly stops its kernels."""
        self.start_node()
        metrics_port = crossbar.routers.free_port()
        a = self.start_host("--metrics", f"tcp:{metrics_port}:interface=127.0.0.1")
        b = self.start_host()
        client = yield self.client()
        ids = []
        for _ in range(2):
            ids.append((yield self.call(client, "webkernel.kernels.start"))["id"])
        ids.sort()
        self.assertEqual({self.owner(i, a, b) for i in ids}, {a, b})  # least loaded: one each
        pids, histories = {}, {}
        for n, kernel_id in enumerate(ids):
            proc = f"webkernel.kernel.{kernel_id}."
            yield self.call(client, proc + "execute", f"x = {n + 40}; print('before', x)")
            pids[kernel_id] = int((yield self.call(client, proc + "eval_cell", "import os; os.getpid()")))
            histories[kernel_id] = crossbar.payload((yield self.call(client, proc + "outputs", since=0)))
        yield leave(client)
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=CALL)
        text = scraped.read().decode()
        self.assertIn('webkernel_kernels{state="idle"} 1.0', text)  # the one kernel of host a
        self.assertIn("webkernel_executions_total 2.0", text)
        self.assertIn("webkernel_kernel_start_seconds_count 1.0", text)

        self.node.stop()
        self.node.start()
        for host in (a, b):
            host.wait_for("registered again", count=1, timeout=CALL)

        client = yield self.client()
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual(sorted(m["id"] for m in listed), ids)
        for n, kernel_id in enumerate(ids):
            proc = f"webkernel.kernel.{kernel_id}."
            history = yield self.call(client, proc + "outputs", since=0)
            self.assertEqual(crossbar.payload(history), histories[kernel_id])
            self.assertIn("before", json.dumps(histories[kernel_id]))
            self.assertEqual((yield self.call(client, proc + "eval_cell", "x")), str(n + 40))

        stopped = self.owner(ids[0], a, b)
        stopped.stop()
        self.assertTrue(_process_gone(pids[ids[0]]), stopped.log())
        self.assertFalse(_process_gone(pids[ids[1]]))
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual([m["id"] for m in listed], [ids[1]])


class RoutingAndPlacementTests(ClusterTestCase):
    """Calls reach the host that owns the kernel; starts go to the least loaded host that fits."""

    @defer.inlineCallbacks
    def test_calls_and_starts_across_two_hosts(self):
        """A kernel still starting answers kernel_not_ready from its own host; placement honours load, kernelspecs and the cluster's limit; a host killed has its kernels reported dead, the other's go on."""
        self.start_node()
        a = self.start_host("--max-kernels", "2")
        b = self.start_host("--max-kernels", "2", env={"JUPYTER_PATH": crossbar.kernelspec_dir("onlyb")})
        client = yield self.client()
        events = {}  # (kernel id, event) -> Deferred of the model

        def awaited(kernel_id, name):
            return events.setdefault((kernel_id, name), defer.Deferred())

        def on_event(event, kernel):
            d = awaited(kernel["id"], event)
            if not d.called:
                d.callback(kernel)
        yield client.subscribe(on_event, "webkernel.kernels.events")

        only_b = yield self.call(client, "webkernel.kernels.start", kernel_name="onlyb", wait=False)
        self.assertIs(self.owner(only_b["id"], a, b), b)
        for _ in range(3):  # however the calls interleave with its start, never another host's answer
            try:
                yield self.call(client, f"webkernel.kernel.{only_b['id']}.kernel_info")
            except ApplicationError as e:
                self.assertEqual(e.error, errors.KERNEL_NOT_READY)
        second = yield self.call(client, "webkernel.kernels.start", wait=False)
        self.assertIs(self.owner(second["id"], a, b), a)  # a has 2 free, b 1
        third = yield self.call(client, "webkernel.kernels.start", wait=False)
        fourth = yield self.call(client, "webkernel.kernels.start", wait=False)
        self.assertEqual({self.owner(k["id"], a, b) for k in (third, fourth)}, {a, b})

        full = yield self.assertFailure(self.call(client, "webkernel.kernels.start"), ApplicationError)
        self.assertEqual(full.error, errors.KERNEL_LIMIT)
        self.assertIn("cluster is full", full.args[0])
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual(sorted(m["id"] for m in listed),
                         sorted(k["id"] for k in (only_b, second, third, fourth)))

        unknown = yield self.assertFailure(
            self.call(client, f"webkernel.kernel.{'0' * 32}.kernel_info"), ApplicationError)
        self.assertEqual(unknown.error, errors.NO_SUCH_KERNEL)
        no_spec = yield self.assertFailure(
            self.call(client, "webkernel.kernels.start", kernel_name="nowhere"), ApplicationError)
        self.assertEqual(no_spec.error, errors.NO_SUCH_KERNELSPEC)
        denied = yield self.assertFailure(
            self.call(client, "webkernel.host.1.kernels.list", "x", "y"), ApplicationError)
        self.assertEqual(denied.error, errors.NOT_AUTHORIZED)

        on_a = [k["id"] for k in (second, third, fourth) if self.owner(k["id"], a, b) is a]
        on_b = [k["id"] for k in (only_b, second, third, fourth) if k["id"] not in on_a]
        status_seen = [defer.Deferred() for _ in on_a]
        for kernel_id, d in zip(on_a, status_seen):
            yield client.subscribe(lambda d=d, **out: d.called or out["content"].get(
                "execution_state") != "dead" or d.callback(out),
                                   f"webkernel.kernel.{kernel_id}.iopub.status")
        for kernel_id in on_a + on_b:  # each is running before its host is killed
            yield awaited(kernel_id, "ready").addTimeout(CALL, reactor)
        self.addCleanup(_kill_kernels, a.kernel_dir)
        a.process.kill()
        for kernel_id in on_a:
            dead = yield awaited(kernel_id, "dead").addTimeout(CALL, reactor)
            self.assertEqual(dead["execution_state"], "dead")
            self.assertIn("left the router", dead["reason"])
        for d in status_seen:
            status = yield d.addTimeout(CALL, reactor)
            self.assertIn("left the router", status["content"]["reason"])
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual(sorted(m["id"] for m in listed), sorted(on_b))
        for kernel_id in on_b:
            self.assertEqual((yield self.call(client, f"webkernel.kernel.{kernel_id}.eval_cell", "1+1")), "2")
