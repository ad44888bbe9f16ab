"""The warm pool in the real service: pooled kernels are real, unlisted, handed out, and stopped."""

import os
import tempfile

import psutil
import pytest
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from tests.service import ServiceProcess
from tests.twisted_wamp import joined, leave

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)


@defer.inlineCallbacks
def logged(service, text, count=1, timeout=60):
    """Wait (bounded) until the service's log holds *text* *count* times."""
    for _ in range(int(timeout / 0.05)):
        if service.log().count(text) >= count:
            return
        yield task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"{text!r} not logged {count} times:\n{service.log()}")


def live(processes):
    """The pids of *processes* still running (not gone, not zombies)."""
    pids = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                pids.append(process.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


class PoolServiceTests(TestCase):
    """--pool python3=2 on the real service, with real kernels."""

    timeout = 180

    @defer.inlineCallbacks
    def pooled_service(self, size):
        """A service with ``--pool python3=SIZE`` once the pool is full, its kernel directory,
        and a client joined to it."""
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-pool-")
        service = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir, "--pool",
                                 f"python3={size}")
        self.addCleanup(service.stop)
        yield logged(service, f"{size} in the pool")
        client = yield joined(service, realm="webkernel")
        return service, kernel_dir, client

    @defer.inlineCallbacks
    def test_pool_hands_out_refills_and_stops_clean(self):
        """Two kernels wait unlisted; a start gets one that runs code; stop leaves no process or file."""
        service, kernel_dir, client = yield self.pooled_service(2)
        self.assertEqual((yield client.call("webkernel.kernels.list")), [])
        pooled = psutil.Process(service.process.pid).children(recursive=True)
        self.assertEqual(len(pooled), 2)
        model = yield client.call("webkernel.kernels.start").addTimeout(60, reactor)
        self.assertIn(f"handed out pooled kernel {model['id']}", service.log())
        self.assertEqual(model["execution_state"], "idle")
        result = yield client.call(f"webkernel.kernel.{model['id']}.eval_cell", "1+1")
        self.assertEqual(result, "2")
        self.assertEqual([k["id"] for k in (yield client.call("webkernel.kernels.list"))],
                         [model["id"]])
        yield logged(service, "2 in the pool", count=2)   # refilled behind the hand-out
        everything = psutil.Process(service.process.pid).children(recursive=True)
        self.assertEqual(len(everything), 3)
        yield leave(client)
        service.stop(timeout=30)
        self.assertIn("shut down 1 kernels", service.log())
        self.assertEqual(live(everything), [])
        self.assertEqual(os.listdir(kernel_dir), [])

    @defer.inlineCallbacks
    def test_a_crashed_services_pooled_kernel_is_killed_its_handed_out_one_reattached(self):
        """SIGKILL of the service: the next start kills the waiting pooled kernel and re-attaches the handed-out one."""
        first, kernel_dir, client = yield self.pooled_service(1)
        model = yield client.call("webkernel.kernels.start").addTimeout(60, reactor)
        yield client.call(f"webkernel.kernel.{model['id']}.eval_cell", "x = 41")
        yield logged(first, "1 in the pool", count=2)   # the refill waits, unlisted
        kernels = psutil.Process(first.process.pid).children(recursive=True)
        self.assertEqual(len(kernels), 2)
        first.process.kill()
        first.process.wait(15)
        self.assertEqual(len(live(kernels)), 2, "kernels outlive the service")

        second = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir)
        self.addCleanup(second.stop)
        yield logged(second, "killed pooled kernel")
        yield logged(second, "re-attached kernel")
        client = yield joined(second, realm="webkernel")
        self.addCleanup(leave, client)
        self.assertEqual([k["id"] for k in (yield client.call("webkernel.kernels.list"))],
                         [model["id"]])
        self.assertEqual((yield client.call(f"webkernel.kernel.{model['id']}.eval_cell", "x + 1")),
                         "42")
        for _ in range(200):  # the killed one is reaped by init: bounded wait for it to go
            if len(live(kernels)) == 1:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(len(live(kernels)), 1)
        self.assertEqual(sorted(n for n in os.listdir(kernel_dir) if n.endswith(".meta.json")),
                         [f"kernel-{model['id']}.meta.json"])
