"""Kernels forked from a template (--kernel-factory fork), behind the real service.

One service for the module, started with ``--kernel-factory fork --preload numpy``;
each forked kernel must be a normal kernel to everything above it. Every wait
is bounded; nothing sleeps.
"""

import os
import re
import signal

import psutil
import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.test_kernel_pool_service import live, logged
from tests.test_kernels import KERNEL_TIMEOUT, Collector, KernelTestCase
from tests.service import ServiceProcess

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


_TEMPLATE = re.compile(r"fork template ready, pid (\d+)")


class ForkTestCase(KernelTestCase):
    """A service forking its python3 kernels from a template that preloaded numpy."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.kernel_dir = tempfile.mkdtemp(prefix="webkernel-fork-")
        cls.service = ServiceProcess("--anonymous", "--kernel-dir", cls.kernel_dir,
                                     "--max-kernels", "6", "--kernel-factory", "fork",
                                     "--preload", "numpy")

    def template_pid(self):
        return int(_TEMPLATE.findall(self.service.log())[-1])

    @defer.inlineCallbacks
    def kernel_pid(self, kid):
        return int((yield self.call(kid, "eval_cell", "import os; os.getpid()")))


class ForkedKernelTests(ForkTestCase):
    """Forked, not spawned; isolated from each other; interrupt, death and restart as usual."""

    @defer.inlineCallbacks
    def test_kernel_is_a_child_of_the_template_in_its_own_session(self):
        """The kernel's parent is the template; it leads a session of its own; numpy came preloaded."""
        yield logged(self.service, "fork template ready")
        kernel = yield self.start_kernel()
        self.assertIn(f"forked kernel {kernel['id']}", self.service.log())
        answer = yield self.call(kernel["id"], "eval_cell",
                                 "import os, sys; (os.getppid(), os.getsid(0) == os.getpid(), "
                                 "'numpy' in sys.modules)")
        self.assertEqual(answer, f"({self.template_pid()}, True, True)")

    @defer.inlineCallbacks
    def test_nothing_unshareable_is_shared(self):
        """Two forked kernels: own connection files, keys, ports, random seeds; their threads and history are their own."""
        a, b = (yield self.start_kernel()), (yield self.start_kernel())
        probe = ("import random, numpy, json, threading, os\n"
                 "from ipykernel.kernelapp import IPKernelApp\n"
                 "app = IPKernelApp.instance()\n"
                 "json.dumps([random.random(), float(numpy.random.random()), app.connection_file,"
                 " app.session.key.decode(), app.shell_port, threading.active_count() > 1,"
                 " get_ipython().history_manager.hist_file != ''])")
        import json
        got = []
        for k in (a, b):
            got.append(json.loads((yield self.call(k["id"], "eval_cell", probe)).strip("'")))
        for i in range(5):
            self.assertNotEqual(got[0][i], got[1][i], (i, got))
        self.assertEqual(os.path.basename(got[0][2]), f"kernel-{a['id']}.json")
        self.assertTrue(got[0][5] and got[0][6])

    @defer.inlineCallbacks
    def test_template_is_checked_clean_before_forking(self):
        """The template reports one thread, no ZeroMQ context and no SQLite connection before forking."""
        yield logged(self.service, "fork template ready")
        line = [l for l in self.service.log().splitlines() if "fork template ready" in l][-1]
        self.assertIn("'threads': 1, 'zmq_context': False, 'sqlite_connections': 0", line)
        self.assertIn("preloaded: numpy", line)

    @defer.inlineCallbacks
    def test_interrupt(self):
        """interrupt (SIGINT to the forked pid) stops a loop with KeyboardInterrupt; state is kept."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        yield self.call(kid, "eval_cell", "kept = 1")
        watcher = yield self.watch(kid)
        running = self.call(kid, "execute", "print('looping', flush=True)\nwhile True: pass")
        yield watcher.until(lambda e: e["msg_type"] == "stream")
        yield self.call(kid, "interrupt")
        final = (yield running).kwresults
        self.assertEqual(final["reply"]["ename"], "KeyboardInterrupt")
        self.assertEqual((yield self.call(kid, "eval_cell", "kept")), "1")

    @defer.inlineCallbacks
    def test_death_is_noticed_and_the_kernel_forked_again(self):
        """A forked kernel killed from outside is dead, then restarted (forked again) under its id."""
        events = Collector()
        yield self.client.subscribe(events, "webkernel.kernels.events")
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        pid = yield self.kernel_pid(kid)
        os.kill(pid, signal.SIGKILL)
        for name in ("dead", "restarting", "restarted"):
            event = yield events.until(lambda e, n=name: e["event"] == n and e["kernel"]["id"] == kid,
                                       timeout=KERNEL_TIMEOUT)
        self.assertIn("killed by signal 9", event["kernel"]["reason"] or
                      [e for e in events.events if e["event"] == "dead"][-1]["kernel"]["reason"])
        new_pid = yield self.kernel_pid(kid)
        self.assertNotEqual(new_pid, pid)
        self.assertEqual(psutil.Process(new_pid).ppid(), self.template_pid())

    @defer.inlineCallbacks
    def test_restart(self):
        """restart gives a fresh forked kernel under the same id."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        yield self.call(kid, "eval_cell", "x = 5")
        yield self.call(kid, "restart")
        error = yield self.assertFailure(self.call(kid, "eval_cell", "x"), ApplicationError)
        self.assertEqual(error.kwargs["ename"], "NameError")


class TemplateDeathTests(ForkTestCase):
    """The template dies: it is started again; its kernels run on, still watched."""

    @defer.inlineCallbacks
    def test_template_killed_is_restarted_and_orphans_are_watched(self):
        """After SIGKILL of the template a new one forks new kernels; an old kernel still works, and its death is seen."""
        yield logged(self.service, "fork template ready")
        old = yield self.start_kernel()
        first = self.template_pid()
        os.kill(first, signal.SIGKILL)
        yield logged(self.service, "fork template exited")
        yield logged(self.service, "fork template ready", count=2)
        self.assertNotEqual(self.template_pid(), first)
        new = yield self.start_kernel()
        self.assertEqual(psutil.Process((yield self.kernel_pid(new["id"]))).ppid(),
                         self.template_pid())
        self.assertEqual((yield self.call(old["id"], "eval_cell", "6*7")), "42")
        events = Collector()
        yield self.client.subscribe(events, "webkernel.kernels.events")
        os.kill((yield self.kernel_pid(old["id"])), signal.SIGKILL)
        yield events.until(lambda e: e["event"] == "dead" and e["kernel"]["id"] == old["id"],
                           timeout=KERNEL_TIMEOUT)


class ForkStopTests(TestCase):
    """Stopping a forking service leaves no process and no file."""

    timeout = 180

    @defer.inlineCallbacks
    def test_stop_leaves_nothing(self):
        """SIGTERM: kernels shut down, the template exits, the kernel directory is empty."""
        import tempfile
        from tests.twisted_wamp import joined, leave
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-fork-stop-")
        service = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir,
                                 "--kernel-factory", "fork", "--pool", "python3=1")
        self.addCleanup(service.stop)
        yield logged(service, "1 in the pool")
        client = yield joined(service, realm="webkernel")
        yield client.call("webkernel.kernels.start").addTimeout(KERNEL_TIMEOUT, reactor)
        yield logged(service, "1 in the pool", count=2)
        everything = psutil.Process(service.process.pid).children(recursive=True)
        self.assertEqual(len(everything), 3)  # the template, the handed-out kernel, the pooled one
        yield leave(client)
        service.stop(timeout=30)
        self.assertEqual(live(everything), [])
        self.assertEqual(os.listdir(kernel_dir), [])


class ForkKeepKernelsTests(TestCase):
    """--keep-kernels with forked kernels: the next service re-attaches them."""

    timeout = 240

    @defer.inlineCallbacks
    def test_forked_kernel_is_reattached(self):
        """A forked kernel left running by a clean stop is recognised (by its open connection file) and re-attached with its state."""
        import tempfile
        from tests.twisted_wamp import joined, leave
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-fork-keep-")
        args = ("--anonymous", "--kernel-dir", kernel_dir, "--kernel-factory", "fork")
        first = ServiceProcess(*args, "--keep-kernels")
        self.addCleanup(first.stop)
        client = yield joined(first, realm="webkernel")
        model = yield client.call("webkernel.kernels.start").addTimeout(KERNEL_TIMEOUT, reactor)
        kid = model["id"]
        pid = int((yield client.call(f"webkernel.kernel.{kid}.eval_cell",
                                     "import os; kept = 7; os.getpid()")))
        yield leave(client)
        first.stop(timeout=30)
        self.assertTrue(psutil.pid_exists(pid))
        second = ServiceProcess(*args)
        self.addCleanup(second.stop)
        yield logged(second, f"kernel {kid}", count=1)
        client = yield joined(second, realm="webkernel")
        events = Collector()
        yield client.subscribe(events, "webkernel.kernels.events")
        kernels = yield client.call("webkernel.kernels.list")
        if not any(k["id"] == kid and k["execution_state"] == "idle" for k in kernels):
            yield events.until(lambda e: e["event"] == "reattached" and e["kernel"]["id"] == kid,
                               timeout=KERNEL_TIMEOUT)
        self.assertEqual((yield client.call(f"webkernel.kernel.{kid}.eval_cell", "kept")), "7")
        yield leave(client)
        second.stop(timeout=30)
        self.assertFalse(running(pid))
