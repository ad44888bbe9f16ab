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
    return [p.pid for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


class PoolServiceTests(TestCase):
    """--pool python3=2 on the real service, with real kernels."""

    timeout = 180

    @defer.inlineCallbacks
    def test_pool_hands_out_refills_and_stops_clean(self):
        """Two kernels wait unlisted; a start gets one that runs code; stop leaves no process or file."""
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-pool-")
        service = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir, "--pool", "python3=2")
        self.addCleanup(service.stop)
        yield logged(service, "2 in the pool")
        client = yield joined(service, realm="webkernel")
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
