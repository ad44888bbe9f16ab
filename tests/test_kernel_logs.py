"""A kernel's .log kept within a size (broker.kernel.logs): rotation, the tail across both files, the timer."""

import os
import shutil
import tempfile

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from broker.kernel.logs import CHECK_INTERVAL, LogCap, old_log_path, output_tail, remove_logs, rotate_if_over


class LogRotationTests(SynchronousTestCase):
    """A log over its size keeps its last part in .log.1 and starts again empty."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="webkernel-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.path = os.path.join(self.dir, "kernel-k1.log")
        # the kernel's own descriptor: O_APPEND, as the launcher opens it
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.addCleanup(os.close, self.fd)

    def test_rotates_only_past_the_size(self):
        """At or under max_bytes nothing happens; over it, the last max_bytes go to .log.1 and the log empties."""
        os.write(self.fd, b"a" * 100)
        self.assertFalse(rotate_if_over(self.path, 100))
        os.write(self.fd, b"b" * 50)
        self.assertTrue(rotate_if_over(self.path, 100))
        self.assertEqual(os.path.getsize(self.path), 0)
        with open(old_log_path(self.path), "rb") as old:
            self.assertEqual(old.read(), b"a" * 50 + b"b" * 50)
        self.assertEqual(os.stat(old_log_path(self.path)).st_mode & 0o777, 0o600)

    def test_the_kernel_writes_on_at_the_start_after_rotation(self):
        """The kernel's O_APPEND descriptor writes at the new end: the file does not keep its old size."""
        os.write(self.fd, b"x" * 1000)
        rotate_if_over(self.path, 10)
        os.write(self.fd, b"after\n")
        with open(self.path, "rb") as log:
            self.assertEqual(log.read(), b"after\n")

    def test_output_tail_reads_across_the_rotation(self):
        """What the kernel printed last is found even right after a rotation moved it to .log.1."""
        os.write(self.fd, b"line one\nline two\n")
        rotate_if_over(self.path, 5)
        self.assertEqual(output_tail(self.path), "two")
        os.write(self.fd, b"Address already in use\n")
        self.assertEqual(output_tail(self.path, max_bytes=100), "two\nAddress already in use")
        self.assertEqual(output_tail(os.path.join(self.dir, "none.log")), "")

    def test_remove_logs_removes_both(self):
        """remove_logs deletes the log and its older part, and may be called again."""
        os.write(self.fd, b"x" * 10)
        rotate_if_over(self.path, 5)
        remove_logs(self.path)
        remove_logs(self.path)
        self.assertEqual(os.listdir(self.dir), [])


class LogCapTests(SynchronousTestCase):
    """The timer that checks a kernel's log while it runs."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="webkernel-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.path = os.path.join(self.dir, "kernel-k1.log")
        self.clock = task.Clock()

    def test_checks_every_interval_until_stopped(self):
        """Each CHECK_INTERVAL the size is checked; once stopped no call is left on the clock."""
        cap = LogCap(self.clock, self.path, max_bytes=10).start()
        with open(self.path, "ab") as log:
            log.write(b"x" * 20)
        self.clock.advance(CHECK_INTERVAL)
        self.assertEqual(os.path.getsize(self.path), 0)
        self.assertEqual(os.path.getsize(old_log_path(self.path)), 10)
        cap.stop()
        cap.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_the_rotation_runs_where_it_is_given(self):
        """Given a runner (the service's thread pool), the copy runs there; the reactor is not held."""
        handed = []

        def run(f, *args):
            handed.append(defer.Deferred())
            handed[-1].addCallback(lambda _: f(*args))
            return handed[-1]
        LogCap(self.clock, self.path, max_bytes=10, run=run).start()
        with open(self.path, "ab") as log:
            log.write(b"x" * 20)
        self.clock.advance(CHECK_INTERVAL)
        self.assertEqual(os.path.getsize(self.path), 20, "not rotated on the clock's thread")
        self.clock.advance(CHECK_INTERVAL)
        self.assertEqual(len(handed), 1, "the next check waits for the one running")
        handed[0].callback(None)
        self.assertEqual(os.path.getsize(old_log_path(self.path)), 10)

    def test_a_rotation_that_ends_after_the_logs_were_removed_leaves_nothing(self):
        """Stopped and the logs removed while the copy ran: the old part it made again goes too."""
        handed = []

        def run(f, *args):
            def raced(_):
                rotated = f(*args)
                # the kernel's end removed its logs on the reactor while the copy ran, just
                # before the copy put the old part in place: the log is gone, the old part is not
                os.remove(self.path)
                return rotated
            handed.append(defer.Deferred().addCallback(raced))
            return handed[-1]
        cap = LogCap(self.clock, self.path, max_bytes=10, run=run).start()
        with open(self.path, "ab") as log:
            log.write(b"x" * 20)
        self.clock.advance(CHECK_INTERVAL)
        cap.stop()
        handed[0].callback(None)
        self.assertEqual(os.listdir(self.dir), [])

    def test_a_missing_log_is_no_error(self):
        """A kernel whose log is gone (removed) is checked without complaint."""
        LogCap(self.clock, self.path, max_bytes=10).start()
        self.clock.advance(CHECK_INTERVAL)
        self.assertFalse(os.path.exists(old_log_path(self.path)))
