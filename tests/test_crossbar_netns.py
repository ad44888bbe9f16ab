"""Scale-out across network namespaces: each kernel host on a network of its own, no shared loopback.

The module makes two network namespaces (tests/netns.py), each linked to the
root namespace by a veth pair on a private /30. Crossbar.io runs in the root
namespace and listens on the root side's addresses (and on 127.0.0.1 for the
test's client); each test runs one ``twistd webkernel --router`` kernel host
inside each namespace (``ip netns exec``), joined by its link's address.
Crossbar.io pings every WebSocket peer each second and drops one silent for
2 s; the hosts ping Crossbar.io the same way (``--router-ping``). A partition
is a link set down: packets are dropped, no FIN, no RST.

Needs root (CI runs as root); skipped, with the reason, where namespaces
cannot be made or Crossbar.io is not installed.
"""

import json
import os
import shutil
import tempfile

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from broker import errors
from tests import crossbar, netns
from tests.twisted_wamp import joined, leave

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing())),
              pytest.mark.skipif(netns.missing() is not None, reason=str(netns.missing()))]

CALL = 60  # seconds: a bound on each call and wait (kernel starts on a loaded machine)
PING = (1000, 2000)  # Crossbar.io's auto-ping interval and timeout, in ms
HOST_PING = ("--router-ping", "1", "--router-ping-timeout", "2")


@pytest.fixture(scope="module")
def namespaces():
    """Two linked network namespaces for the module, removed with all inside even if a test fails."""
    try:
        made = netns.make(["a", "b"])
    except netns.NamespacesUnavailable as e:
        pytest.skip(f"cannot make network namespaces here: {e}")
    yield made
    netns.remove(made)


@pytest.fixture(autouse=True)
def _give_namespaces(request, namespaces):
    request.instance.namespaces = namespaces


class KernelEvents:
    """``webkernel.kernels.events`` as seen by a client: await the n-th event of a kind for a kernel."""

    def __init__(self):
        self.seen = {}  # (kernel id, event) -> [model, ...]
        self.waiting = {}  # (kernel id, event, n) -> Deferred

    def __call__(self, event, kernel):
        key = (kernel["id"], event)
        self.seen.setdefault(key, []).append(kernel)
        d = self.waiting.pop((*key, len(self.seen[key])), None)
        if d is not None:
            d.callback(kernel)

    def nth(self, kernel_id, event, n=1):
        """The model of the n-th *event* for *kernel_id* (bounded by CALL)."""
        models = self.seen.get((kernel_id, event), [])
        if len(models) >= n:
            return defer.succeed(models[n - 1])
        d = self.waiting.setdefault((kernel_id, event, n), defer.Deferred())
        return d.addTimeout(CALL, reactor)

    def count(self, kernel_id, event):
        return len(self.seen.get((kernel_id, event), []))


class NamespacedClusterTestCase(TestCase):
    """Crossbar.io in the root namespace; one kernel host inside each namespace."""

    timeout = 300

    def setUp(self):
        work = tempfile.mkdtemp(prefix="webkernel-netns-")
        self.addCleanup(shutil.rmtree, work, True)
        self.node = crossbar.CrossbarNode(
            work, interfaces=[ns.gateway for ns in self.namespaces], auto_ping=PING).start()
        self.addCleanup(self.node.stop)
        for ns in self.namespaces:  # whatever the test did: links up, nothing left running
            self.addCleanup(ns.kill_all)
            self.addCleanup(ns.heal)

    def start_host(self, ns, *args, env=None):
        """A kernel host inside *ns*, joined to Crossbar.io at its link's root-side address."""
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-host-")
        self.addCleanup(shutil.rmtree, kernel_dir, True)
        host = crossbar.kernel_host(self.node, kernel_dir, *HOST_PING, *args, env=env,
                                    url=f"ws://{ns.gateway}:{self.node.port}/ws",
                                    wrapper=ns.wrapper)
        host.kernel_dir, host.namespace = kernel_dir, ns
        self.addCleanup(host.stop)
        self.assertIn(host.process.pid, ns.pids())  # it runs inside, not in the root namespace
        return host

    @defer.inlineCallbacks
    def client(self):
        """A client in the root namespace, with every kernel event recorded in ``self.events``."""
        session = yield joined(self.node, realm=crossbar.REALM)
        self.addCleanup(lambda: leave(session) if session.is_attached() else None)
        self.events = KernelEvents()
        yield session.subscribe(self.events, "webkernel.kernels.events")
        return session

    def call(self, session, uri, *args, **kwargs):
        return session.call(uri, *args, **kwargs).addTimeout(CALL, reactor)

    owner = staticmethod(crossbar.kernel_owner)

    @defer.inlineCallbacks
    def one_kernel_each(self, client, a, b):
        """Start two kernels (placement puts one on each host); their ids, a's first, once ready."""
        started = []
        for _ in range(2):
            started.append((yield self.call(client, "webkernel.kernels.start"))["id"])
        self.assertEqual({self.owner(k, a, b) for k in started}, {a, b})
        on_a, on_b = sorted(started, key=lambda k: self.owner(k, a, b) is b)
        for kernel_id in (on_a, on_b):
            yield self.events.nth(kernel_id, "ready")
        return on_a, on_b

    @defer.inlineCallbacks
    def dead_status(self, client, kernel_id):
        """A Deferred of the next ``dead`` status output on the kernel's iopub.status topic."""
        d = defer.Deferred()

        def on_status(**output):
            if output["content"].get("execution_state") == "dead" and not d.called:
                d.callback(output)
        yield client.subscribe(on_status, f"webkernel.kernel.{kernel_id}.iopub.status")
        return d.addTimeout(CALL, reactor)


class PlacementTests(NamespacedClusterTestCase):
    """Starts go where there is room and the kernelspec; every kernel answers wherever its host runs."""

    @defer.inlineCallbacks
    def test_placement_across_namespaces(self):
        """The host with most free slots gets a start, the only host with a kernelspec gets its kernels, a full cluster says so, and a root-namespace client runs and watches a kernel on each host."""
        a_ns, b_ns = self.namespaces
        a = self.start_host(a_ns, "--max-kernels", "3")
        b = self.start_host(b_ns, "--max-kernels", "1",
                            env={"JUPYTER_PATH": crossbar.kernelspec_dir("onlyb")})
        client = yield self.client()

        first = yield self.call(client, "webkernel.kernels.start")
        self.assertIs(self.owner(first["id"], a, b), a)  # 3 free slots against 1
        only_b = yield self.call(client, "webkernel.kernels.start", kernel_name="onlyb")
        self.assertIs(self.owner(only_b["id"], a, b), b)  # though a has 2 free against 1
        self.assertNotEqual(first["host"], only_b["host"])
        rest = []
        for _ in range(2):  # b is full: both on a
            rest.append((yield self.call(client, "webkernel.kernels.start", wait=False)))
        self.assertEqual([self.owner(k["id"], a, b) for k in rest], [a, a])
        full = yield self.assertFailure(self.call(client, "webkernel.kernels.start"), ApplicationError)
        self.assertEqual(full.error, errors.KERNEL_LIMIT)
        self.assertIn("the cluster is full: its 2 hosts with kernelspec default run 4 kernels",
                      full.args[0])
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual(sorted(m["id"] for m in listed),
                         sorted(k["id"] for k in (first, only_b, *rest)))

        for kernel, host in ((first, a), (only_b, b)):
            proc = f"webkernel.kernel.{kernel['id']}."
            printed = defer.Deferred()
            yield client.subscribe(lambda d=printed, **out: d.called or d.callback(out),
                                   f"webkernel.kernel.{kernel['id']}.iopub.stream")
            yield self.call(client, proc + "execute",
                            "import os; print('netns', os.stat('/proc/self/ns/net').st_ino)")
            out = yield printed.addTimeout(CALL, reactor)
            inside = os.stat(f"/run/netns/{host.namespace.name}").st_ino
            self.assertEqual(out["content"]["text"].split(), ["netns", str(inside)])
            self.assertEqual((yield self.call(client, proc + "eval_cell", "6*7")), "42")


class PartitionTests(NamespacedClusterTestCase):
    """A host cut off without a FIN is noticed by ping, reported dead, and comes back whole when the link heals."""

    @defer.inlineCallbacks
    def test_partition_and_heal(self):
        """Cut from the router, a host's kernels are reported dead and leave the list while the other host's go on; healed, the host reconnects by its own ping and registers them again with ids and history."""
        a_ns, b_ns = self.namespaces
        a, b = self.start_host(a_ns), self.start_host(b_ns)
        client = yield self.client()
        on_a, on_b = yield self.one_kernel_each(client, a, b)
        proc_a = f"webkernel.kernel.{on_a}."
        yield self.call(client, proc_a + "execute", "x = 41; print('before the partition', x)")
        pid_a = int((yield self.call(client, proc_a + "eval_cell", "import os; os.getpid()")))
        history = crossbar.payload((yield self.call(client, proc_a + "outputs", since=0)))
        dead_status = yield self.dead_status(client, on_a)

        a_ns.cut()
        dead = yield self.events.nth(on_a, "dead")
        self.assertEqual(dead["execution_state"], "dead")
        self.assertIn("left the router and did not come back", dead["reason"])
        status = yield dead_status
        self.assertEqual(status["seq"], None)
        self.assertEqual(status["content"]["reason"], dead["reason"])
        self.node.process.wait_for(f"{a_ns.address}.*ping timeout", timeout=CALL)  # no FIN: ping
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual([m["id"] for m in listed], [on_b])
        self.assertEqual((yield self.call(client, f"webkernel.kernel.{on_b}.eval_cell", "1+1")), "2")
        a.wait_for("ping timeout", timeout=CALL)  # the host too notices by its own ping

        a_ns.heal()
        yield self.events.nth(on_a, "ready", 2)  # registered again under a new session
        a.wait_for(f"kernel {on_a} registered again", timeout=CALL)
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual(sorted(m["id"] for m in listed), sorted([on_a, on_b]))
        self.assertEqual(crossbar.payload((yield self.call(client, proc_a + "outputs", since=0))),
                         history)
        self.assertIn("before the partition", json.dumps(history))
        self.assertEqual((yield self.call(client, proc_a + "eval_cell", "x")), "41")
        self.assertEqual(int((yield self.call(client, proc_a + "eval_cell", "os.getpid()"))), pid_a)
        self.assertEqual(self.events.count(on_b, "dead"), 0)
        self.assertTrue(b.alive())


class HostKilledTests(NamespacedClusterTestCase):
    """A host killed inside its namespace has its kernels reported dead; the other host's go on."""

    @defer.inlineCallbacks
    def test_sigkill_inside_a_namespace(self):
        """SIGKILL of a's process: its kernel is reported dead with the reason and leaves the list; b's kernel runs on."""
        a_ns, b_ns = self.namespaces
        a, b = self.start_host(a_ns), self.start_host(b_ns)
        client = yield self.client()
        on_a, on_b = yield self.one_kernel_each(client, a, b)
        dead_status = yield self.dead_status(client, on_a)

        a.process.kill()
        dead = yield self.events.nth(on_a, "dead")
        self.assertIn("left the router and did not come back", dead["reason"])
        self.assertIn("left the router", (yield dead_status)["content"]["reason"])
        listed = yield self.call(client, "webkernel.kernels.list")
        self.assertEqual([m["id"] for m in listed], [on_b])
        self.assertEqual((yield self.call(client, f"webkernel.kernel.{on_b}.eval_cell", "2+3")), "5")
        self.assertEqual(self.events.count(on_b, "dead"), 0)
