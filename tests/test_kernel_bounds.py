"""Memory and disk bounds proved on a real service and real kernels, measured before and after a long cell.

* What the service holds for a running ``execute``'s final result is bounded
  while the cell runs: once a cell has printed 50,000 lines of 2,000
  characters (100 MB) and waits, the service's resident memory (``VmRSS``)
  is far less than 100 MB above what it was before. (Its *peak* is not the
  measure: the kernel's iopub socket queues without limit in ZeroMQ while the
  service catches up, a transient this bound is not about.)
* A kernel's ``.log`` is kept within ``--kernel-log-bytes``: a cell writing
  50,000 lines (5 MB) to its file descriptor 1 leaves at most about twice that
  size on disk.

One service (subprocess) per test class, so one test's memory cannot hide
another's. Waits are bounded; nothing sleeps a fixed time before an
assertion (the log check polls for the rotation, bounded).
"""

import os
import tempfile

import pytest
from twisted.internet import defer, reactor, task

from tests.service import ServiceProcess
from tests.test_kernels import Collector, KernelTestCase

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
CELL_TIMEOUT = 300


def resident(pid):
    """The process's resident memory (``VmRSS``), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/<pid>/status")


class ServiceTestCase(KernelTestCase):
    """A KernelTestCase whose service takes ``ARGS``."""

    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.kernel_dir = tempfile.mkdtemp(prefix="webkernel-test-")
        cls.service = ServiceProcess("--anonymous", "--kernel-dir", cls.kernel_dir, *cls.ARGS)


class RunningResultMemoryTests(ServiceTestCase):
    """A long cell's final result does not hold the service's memory while it runs."""

    timeout = CELL_TIMEOUT + 60
    ARGS = ("--history-bytes", str(1 * MiB))

    @defer.inlineCallbacks
    def test_a_100_mb_cell_holds_no_100_mb_in_the_service(self):
        """After 50,000 lines of 2,000 characters, the cell still running, the service holds under 64 MiB more."""
        kernel = yield self.start_kernel()
        yield self.call(kernel["id"], "execute", "print('warm up')")
        printed = Collector()  # the cell's marker, after its last line (iopub is in order)
        yield self.client.subscribe(printed, f"webkernel.kernel.{kernel['id']}.iopub.display_data")
        flag = os.path.join(self.kernel_dir, "go-on")
        before = resident(self.service.process.pid)
        code = ("import os, time\n"
                "from IPython.display import display\n"
                "line = 'x' * 1999\n"
                "for i in range(50000):\n"
                "    print(line, flush=True)\n"
                "display({'text/plain': 'printed'}, raw=True)\n"
                f"while not os.path.exists({flag!r}):\n"
                "    time.sleep(0.01)\n")
        running = self.client.call(f"webkernel.kernel.{kernel['id']}.execute", code).addTimeout(
            CELL_TIMEOUT, reactor)
        yield printed.until(lambda event: True, timeout=CELL_TIMEOUT)
        held = resident(self.service.process.pid) - before
        open(flag, "w").close()
        result = (yield running).kwresults
        self.assertEqual(result["status"], "ok")
        self.assertIsNotNone(result["omitted"])
        kept = sum(len(o["content"].get("text", "")) for o in result["outputs"])
        self.assertLessEqual(kept, 4 * MiB)
        self.assertLess(held, 64 * MiB, f"the service holds {held / MiB:.0f} MiB more mid-cell")


class KernelLogSizeTests(ServiceTestCase):
    """A kernel's .log stays within --kernel-log-bytes."""

    timeout = CELL_TIMEOUT + 60
    LOG_BYTES = 64 * 1024
    ARGS = ("--kernel-log-bytes", str(LOG_BYTES))

    def log_sizes(self, kernel_id):
        path = os.path.join(self.kernel_dir, f"kernel-{kernel_id}.log")
        return [os.path.getsize(p) if os.path.exists(p) else None for p in (path, path + ".1")]

    @defer.inlineCallbacks
    def until(self, condition, timeout=30.0, interval=0.2):
        """Wait (bounded) until *condition()* is true."""
        for _ in range(int(timeout / interval)):
            if condition():
                return
            yield task.deferLater(reactor, interval, lambda: None)
        self.assertTrue(condition())

    @defer.inlineCallbacks
    def test_a_kernel_writing_5_mb_to_its_stdout_leaves_its_logs_bounded(self):
        """50,000 lines written to fd 1 are rotated away: the log and its old part stay near --kernel-log-bytes."""
        kernel = yield self.start_kernel()
        code = ("import os\n"
                "for i in range(50000):\n"
                "    os.write(1, b'y' * 99 + b'\\n')\n")
        result = yield self.client.call(f"webkernel.kernel.{kernel['id']}.execute", code).addTimeout(
            CELL_TIMEOUT, reactor)
        self.assertEqual(result.kwresults["status"], "ok")
        # the service checks each log every 2 s: wait for the rotation after the cell's last write
        yield self.until(lambda: self.log_sizes(kernel["id"])[1] is not None
                         and self.log_sizes(kernel["id"])[0] <= self.LOG_BYTES)
        log, old = self.log_sizes(kernel["id"])
        self.assertEqual(old, self.LOG_BYTES)
        self.assertLessEqual(log + old, 2 * self.LOG_BYTES)
