"""The users file and the ``webkernel-users`` command: hashing, modes, atomic writes, CSV import."""

import fcntl
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from autobahn.wamp.auth import compute_wcs, derive_key
from twisted.trial.unittest import SynchronousTestCase

from broker.users import command, store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FileTestCase(SynchronousTestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.path = os.path.join(self.directory, "users.json")
        self.addCleanup(shutil.rmtree, self.directory)

    def run_command(self, *argv):
        out = io.StringIO()
        command.run([self.path, *argv], out)
        return out.getvalue()


class StoreTests(FileTestCase):
    """What is stored for a user, and how the file is written."""

    def test_no_password_in_clear(self):
        """The file holds the WAMP-CRA derived key with salt, iterations and keylen, not the password."""
        self.run_command("add", "alice", "--role", "student", "--password", "correct horse")
        text = open(self.path).read()
        self.assertNotIn("correct horse", text)
        entry = json.loads(text)["users"]["alice"]
        expected = derive_key("correct horse", entry["salt"], entry["iterations"],
                              entry["keylen"]).decode()
        self.assertEqual(entry["key"], expected)
        self.assertEqual(entry["role"], "student")

    def test_wampcra_works_from_the_stored_key(self):
        """A client's WAMP-CRA signature from the password equals the one computed from the stored key."""
        user = store.User.create("alice", "student", "correct horse")
        extra = user.challenge_extra()
        client_key = derive_key("correct horse", extra["salt"], extra["iterations"], extra["keylen"])
        self.assertEqual(compute_wcs(client_key, "challenge"), compute_wcs(user.key, "challenge"))

    def test_salts_differ(self):
        """The same password gives two users different salts and keys."""
        a = store.User.create("a", "student", "same password")
        b = store.User.create("b", "student", "same password")
        self.assertNotEqual((a.salt, a.key), (b.salt, b.key))
        self.assertTrue(a.checks("same password"))
        self.assertFalse(a.checks("other password"))
        self.assertFalse(a.checks(None))

    def test_mode_0600(self):
        """The file is created with mode 0600 and keeps it when rewritten."""
        self.run_command("add", "alice", "--role", "student")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.run_command("add", "bob", "--role", "teacher")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_atomic_replace(self):
        """Every save replaces the file by rename (a reader sees the old or the new file, whole), leaving no temporary file."""
        self.run_command("add", "alice", "--role", "student")
        before = os.stat(self.path).st_ino
        self.run_command("add", "bob", "--role", "student")
        self.assertNotEqual(os.stat(self.path).st_ino, before)
        self.assertEqual(sorted(os.listdir(self.directory)), ["users.json", "users.json.lock"])

    def test_names_are_checked(self):
        """Names must be WAMP-safe authids; the service's own names are refused."""
        for bad in ("Alice", "a.b", "", "a" * 33, "a b", "webkernel_host", "webkernel_x", 5):
            self.assertRaises(store.BadName, store.check_name, bad)
        self.assertEqual(store.check_name("a_1"), "a_1")

    def test_bad_file_is_a_clear_error(self):
        """A file that is not a users file is refused with a message naming it."""
        with open(self.path, "w") as f:
            f.write("{not json")
        e = self.assertRaises(store.UsersFileError, store.load, self.path)
        self.assertIn(self.path, str(e))
        with open(self.path, "w") as f:
            json.dump({"version": 1, "users": {"a": {"role": "king"}}}, f)
        e = self.assertRaises(store.UsersFileError, store.load, self.path)
        self.assertIn("'a'", str(e))

    def test_missing_file_has_no_users(self):
        """A missing file is an empty one (the first add creates it)."""
        self.assertEqual(store.load(self.path), {})


class CommandTests(FileTestCase):
    """Each sub-command of webkernel-users."""

    def test_add_prints_a_generated_password(self):
        """add without --password prints a generated password that checks."""
        password = self.run_command("add", "alice", "--role", "observer").strip()
        self.assertGreaterEqual(len(password), 12)
        user = store.load(self.path)["alice"]
        self.assertTrue(user.checks(password))
        self.assertEqual(user.role, "observer")

    def test_add_with_password_prints_nothing(self):
        """add --password prints nothing."""
        self.assertEqual(self.run_command("add", "a", "--role", "student", "--password", "p" * 8), "")

    def test_add_refuses_duplicates_and_short_passwords(self):
        """A second add of a name, or a short password, is refused and changes nothing."""
        self.run_command("add", "alice", "--role", "student", "--password", "first password")
        self.assertRaises(command.Refused, self.run_command, "add", "alice", "--role", "teacher")
        self.assertRaises(store.BadPassword, self.run_command, "add", "bob", "--role", "student",
                          "--password", "short")
        users = store.load(self.path)
        self.assertEqual(list(users), ["alice"])
        self.assertTrue(users["alice"].checks("first password"))

    def test_passwd(self):
        """passwd sets a new password: the old one stops working."""
        self.run_command("add", "alice", "--role", "student", "--password", "first password")
        new = self.run_command("passwd", "alice").strip()
        user = store.load(self.path)["alice"]
        self.assertTrue(user.checks(new))
        self.assertFalse(user.checks("first password"))
        self.assertRaises(command.Refused, self.run_command, "passwd", "nobody")

    def test_remove_and_list(self):
        """remove drops a user; list prints names and roles."""
        self.run_command("add", "bob", "--role", "teacher")
        self.run_command("add", "alice", "--role", "student")
        self.assertEqual(self.run_command("list"), "alice\tstudent\nbob\tteacher\n")
        self.run_command("remove", "alice")
        self.assertEqual(self.run_command("list"), "bob\tteacher\n")
        self.assertRaises(command.Refused, self.run_command, "remove", "alice")

    def test_import(self):
        """import adds each row, with a header skipped, and prints the generated passwords as CSV."""
        csv_path = os.path.join(self.directory, "class.csv")
        with open(csv_path, "w") as f:
            f.write("name,role,password\nann,student,\nben,student,given password\nteach,teacher\n")
        out = self.run_command("import", csv_path)
        lines = out.splitlines()
        self.assertEqual(lines[0], "name,password")
        generated = dict(line.split(",") for line in lines[1:])
        self.assertEqual(sorted(generated), ["ann", "teach"])
        users = store.load(self.path)
        self.assertTrue(users["ann"].checks(generated["ann"]))
        self.assertTrue(users["ben"].checks("given password"))
        self.assertEqual(users["teach"].role, "teacher")

    def test_import_is_all_or_nothing(self):
        """A bad row (here a bad role on line 3) refuses the whole import, naming the line."""
        self.run_command("add", "zed", "--role", "student")
        csv_path = os.path.join(self.directory, "class.csv")
        with open(csv_path, "w") as f:
            f.write("ann,student\n\nbad,king\n")
        e = self.assertRaises(command.Refused, self.run_command, "import", csv_path)
        self.assertIn("line 3", str(e))
        self.assertEqual(list(store.load(self.path)), ["zed"])

    @pytest.mark.integration
    def test_console_script(self):
        """The command runs as a program: exit 1 with a message when refused, 0 when done."""
        run = [sys.executable, "-m", "broker.users.command", self.path]
        done = subprocess.run(run + ["add", "alice", "--role", "student"], cwd=ROOT,
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        refused = subprocess.run(run + ["add", "Bad.Name", "--role", "student"], cwd=ROOT,
                                 capture_output=True, text=True)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("bad user name", refused.stderr)


class LockTests(FileTestCase):
    """Two edits of the users file at once: one waits for the other, neither is lost."""

    def test_edit_holds_the_lock_while_it_reads_and_writes(self):
        """While a command is between its read and its write, another editor cannot take the lock."""
        self.run_command("add", "alice", "--role", "student", "--password", "first password")
        attempts = []
        real_save = store.save

        def save_while_trying_the_lock(path, users):
            fd = os.open(store.lock_path(self.path), os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                attempts.append("took it")
            except BlockingIOError:
                attempts.append("waits")
            finally:
                os.close(fd)
            real_save(path, users)

        self.patch(store, "save", save_while_trying_the_lock)
        self.run_command("passwd", "alice")
        self.run_command("add", "bob", "--role", "student")
        self.assertEqual(attempts, ["waits", "waits"])
        fd = os.open(store.lock_path(self.path), os.O_RDWR)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the command is done

    def test_lock_file_is_private(self):
        """The lock file beside the users file is mode 0600 and stays in place."""
        self.run_command("add", "alice", "--role", "student")
        self.assertEqual(stat.S_IMODE(os.stat(self.path + ".lock").st_mode), 0o600)

    @pytest.mark.integration
    def test_parallel_commands_keep_every_user(self):
        """Eight webkernel-users add commands started at once leave eight users in the file."""
        run = [sys.executable, "-m", "broker.users.command", self.path, "add"]
        names = [f"user{i}" for i in range(8)]
        processes = [subprocess.Popen(run + [name, "--role", "student"], cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for name in names]
        for process in processes:
            _, stderr = process.communicate()
            self.assertEqual(process.returncode, 0, stderr)
        self.assertEqual(sorted(store.load(self.path)), names)
