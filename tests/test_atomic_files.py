"""broker.atomic_files: a file replaced in one step, with its mode, and nothing left when the write fails."""

import os
import shutil
import stat
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from broker.atomic_files import replace_file


class ReplaceFileTests(SynchronousTestCase):
    """replace_file on a real temporary directory."""

    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)
        self.path = os.path.join(self.directory, "file.json")

    def test_replaces_by_rename_with_the_mode(self):
        """The new content arrives under a new inode with the asked mode, and no temporary file stays."""
        replace_file(self.path, b"old", 0o600)
        before = os.stat(self.path).st_ino
        replace_file(self.path, b"new", 0o644, sync=True)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"new")
        self.assertNotEqual(os.stat(self.path).st_ino, before)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o644)
        self.assertEqual(os.listdir(self.directory), ["file.json"])

    def test_a_failed_write_leaves_the_old_file_and_no_temporary(self):
        """A write that fails part way raises, keeps the old content, and removes its temporary file."""
        replace_file(self.path, b"old", 0o600)
        self.assertRaises(TypeError, replace_file, self.path, "not bytes", 0o600)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"old")
        self.assertEqual(os.listdir(self.directory), ["file.json"])

    def test_a_relative_path_is_written_beside_itself(self):
        """A path relative to the working directory gets its temporary file in that directory."""
        cwd = os.open(".", os.O_RDONLY)
        self.addCleanup(os.close, cwd)
        self.addCleanup(os.fchdir, cwd)  # cleanups run last first: back, then closed
        os.chdir(self.directory)
        replace_file("relative.json", b"x", 0o600, prefix=".users-", suffix="")
        self.assertEqual(sorted(os.listdir(self.directory)), ["relative.json"])
