"""An existing --kernel-dir is made private (0700) when it is ours, and refused when it is not."""

import os
import shutil
import stat
import tempfile
from unittest import mock

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from broker import tap
from broker.kernel.records import KernelDirNotOurs, ensure_private_dir


class KernelDirModeTests(SynchronousTestCase):

    def setUp(self):
        self.parent = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.parent)
        self.path = os.path.join(self.parent, "kernels")

    def mode(self):
        return stat.S_IMODE(os.stat(self.path).st_mode)

    def test_new_directory_is_private(self):
        """A directory that does not exist is created 0700."""
        ensure_private_dir(self.path)
        self.assertEqual(self.mode(), 0o700)

    def test_existing_open_directory_of_ours_is_tightened(self):
        """An existing 0755 directory (as seen in the attack run) becomes 0700."""
        os.mkdir(self.path)
        os.chmod(self.path, 0o755)
        ensure_private_dir(self.path)
        self.assertEqual(self.mode(), 0o700)

    def test_directory_of_another_user_is_refused(self):
        """A directory owned by another uid is refused, with a message that says why, and left alone."""
        os.mkdir(self.path)
        os.chmod(self.path, 0o755)
        with mock.patch("os.getuid", return_value=os.getuid() + 1):
            with self.assertRaises(KernelDirNotOurs) as raised:
                ensure_private_dir(self.path)
            self.assertIn("not to this service's user", str(raised.exception))
            with self.assertRaises(usage.UsageError) as refused:
                tap.Options().parseOptions(["--kernel-dir", self.path])
            self.assertIn("--kernel-dir", str(refused.exception))
        self.assertEqual(self.mode(), 0o755)
