"""Stopping the service leaves no kernel process and no connection file behind."""

import os
import tempfile

import pytest
import psutil
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.service import ServiceProcess
from tests.twisted_wamp import joined, leave

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)


class ServiceStopTests(TestCase):
    """SIGTERM shuts every kernel down."""

    timeout = 120

    @defer.inlineCallbacks
    def test_sigterm_shuts_kernels_down(self):
        """After SIGTERM no kernel process is left and the kernel directory is empty."""
        kernel_dir = tempfile.mkdtemp(prefix="webkernel-stop-")
        service = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir)
        self.addCleanup(service.stop)
        client = yield joined(service, realm="webkernel")
        for _ in range(2):
            yield client.call("webkernel.kernels.start").addTimeout(60, reactor)
        kernels = psutil.Process(service.process.pid).children(recursive=True)
        self.assertEqual(len(kernels), 2)
        self.assertEqual(len([n for n in os.listdir(kernel_dir) if n.endswith(".meta.json")]), 2)
        yield leave(client)
        service.stop(timeout=30)
        self.assertIn("shut down 2 kernels", service.log())
        self.assertEqual([p.pid for p in kernels if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], [])
        self.assertEqual(os.listdir(kernel_dir), [])
