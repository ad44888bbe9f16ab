"""The pieces of OS isolation on fakes: account allocation, the confining command, the launch.

No account is created and no process started: a fake account database
records what would be made, a fake process reactor what would be spawned.
(``test_kernel_isolation.py`` attacks the real thing.)
"""

import json
import os
import shutil
import stat
import sys
import tempfile

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from twisted.trial.unittest import TestCase

from broker.kernel import isolation_checks, records
from broker.kernel.accounts import (
    Account,
    NoAccount,
    SharedAccount,
    UserAccounts,
    account_name,
    parse_uid_range,
)
from broker.kernel.confinement import CONFINE, Confinement, Limits
from broker.kernel.launcher import KernelLauncher
from broker.kernel.testing import FakeProcessReactor
from broker.users import store

KERNEL_ID = "0123456789abcdef0123456789abcdef"


class FakeSystem:
    """An account database in memory; records what is created and which homes are made."""

    def __init__(self, accounts=None, other_ids=()):
        self.accounts = dict(accounts or {})  # name -> (uid, gid)
        self.other_ids = set(other_ids)
        self.created = []
        self.homes = []

    def lookup(self, name):
        return self.accounts.get(name)

    def ids_in_use(self):
        return {uid for uid, _ in self.accounts.values()} | self.other_ids

    def create(self, name, uid, comment):
        self.created.append((name, uid, comment))
        self.accounts[name] = (uid, uid)

    def ensure_home(self, path, uid, gid):
        self.homes.append((path, uid, gid))


class UserAccountsTests(TestCase):
    """Which account a user's kernels get, made on demand from the prefix and uid range."""

    def accounts(self, system, **kwargs):
        return UserAccounts("/srv/homes", "wk-", (20000, 20002), system=system,
                            service_uid=0, **kwargs)

    def test_creates_an_account_with_the_lowest_free_uid(self):
        """A user without an account gets <prefix><user> with the first uid free as uid and gid."""
        system = FakeSystem({"wk-bob": (20000, 20000)}, other_ids={20001})
        account = self.successResultOf(self.accounts(system).account_for("alice"))
        self.assertEqual(account, Account("wk-alice", 20002, 20002, "/srv/homes/alice"))
        self.assertEqual(system.created, [("wk-alice", 20002, "webkernel user alice")])
        self.assertEqual(system.homes, [("/srv/homes/alice", 20002, 20002)])

    def test_an_existing_account_in_range_is_used_again(self):
        """Asking twice (or after a restart) creates nothing more: the account in range is reused."""
        system = FakeSystem({"wk-alice": (20001, 20001)})
        accounts = self.accounts(system)
        self.successResultOf(accounts.account_for("alice"))
        self.assertEqual(self.successResultOf(accounts.account_for("alice")).uid, 20001)
        self.assertEqual(system.created, [])

    def test_an_account_outside_the_range_is_not_ours(self):
        """wk-alice with a uid outside --uid-range is refused, not taken over."""
        system = FakeSystem({"wk-alice": (1000, 1000)})
        failure = self.failureResultOf(self.accounts(system).account_for("alice"), NoAccount)
        self.assertIn("outside --uid-range", str(failure.value))

    def test_a_full_range_is_refused(self):
        """No free uid left: the message says to widen --uid-range."""
        system = FakeSystem(other_ids={20000, 20001, 20002})
        failure = self.failureResultOf(self.accounts(system).account_for("alice"), NoAccount)
        self.assertIn("widen it", str(failure.value))

    def test_a_mapped_account_is_used_as_it_is(self):
        """A user mapped to an existing account in the users file runs as that account."""
        system = FakeSystem({"alice": (1001, 100)})
        accounts = self.accounts(system, mapped={"alice": "alice"}.get)
        self.assertEqual(self.successResultOf(accounts.account_for("alice")),
                         Account("alice", 1001, 100, "/srv/homes/alice"))
        self.assertEqual(system.created, [])

    def test_a_mapping_to_root_or_to_nothing_is_refused(self):
        """A mapping to root, to the service's account or to a missing account is refused."""
        system = FakeSystem({"root": (0, 0)})
        for target, why in (("root", "never run as root"), ("ghost", "does not exist")):
            accounts = self.accounts(system, mapped=lambda user, t=target: t)
            failure = self.failureResultOf(accounts.account_for("alice"), NoAccount)
            self.assertIn(why, str(failure.value))

    def test_names_that_are_not_users_get_no_account(self):
        """An owner that is not a possible user name (a service authid, a path) gets no account."""
        system = FakeSystem()
        for owner in ("webkernel_host", "../etc", None):
            self.failureResultOf(self.accounts(system).account_for(owner), NoAccount)
        self.assertEqual(system.created, [])

    def test_long_names_are_shortened_with_a_digest(self):
        """Prefix plus a 32-character user name is cut to 32 characters, distinct per user."""
        a, b = account_name("wk-", "a" * 31 + "x"), account_name("wk-", "a" * 31 + "y")
        self.assertEqual((len(a), len(b)), (32, 32))
        self.assertNotEqual(a, b)
        self.assertEqual(account_name("wk-", "alice"), "wk-alice")

    def test_uid_ranges(self):
        """LOW-HIGH parses; root, reversed or malformed ranges are refused."""
        self.assertEqual(parse_uid_range("20000-29999"), (20000, 29999))
        for bad in ("0-10", "10-5", "20000", "a-b"):
            self.assertRaises(ValueError, parse_uid_range, bad)


class SharedAccountTests(TestCase):
    """--unsafe-shared-account: the service's own account, a working directory per user."""

    def test_working_directory_per_user(self):
        """Each user gets <home root>/<user>, mode 0700, and the service's uid."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        account = self.successResultOf(SharedAccount(root).account_for("alice"))
        self.assertEqual((account.uid, account.home), (os.geteuid(), os.path.join(root, "alice")))
        self.assertEqual(stat.S_IMODE(os.stat(account.home).st_mode), 0o700)

    def test_names_that_are_not_users_get_no_directory(self):
        """An owner that is not a possible user name (a service authid, a path) gets nothing made for it."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        for owner in ("webkernel_host", "../etc", None):
            failure = self.failureResultOf(SharedAccount(root).account_for(owner), NoAccount)
            self.assertIn("cannot get a working directory", str(failure.value))
        self.assertEqual(os.listdir(root), [])


class ConfinementTests(TestCase):
    """The command that confines a kernel, and the environment it gets."""

    ACCOUNT = Account("wk-alice", 20001, 20002, "/srv/homes/alice")

    def test_command_switches_after_the_limits(self):
        """The wrapper gets uid, gid, nice, workdir and every limit, NPROC included, then the kernel."""
        limits = Limits(memory=2 ** 30, processes=64, open_files=256, file_size=2 ** 20, nice=7)
        argv = Confinement(limits).command("/py", self.ACCOUNT, "/k/python", ["python", "-m", "k"])
        self.assertEqual(argv[:5], ["/py", "-I", "-S", "-c", CONFINE])
        self.assertEqual(argv[5:9], ["20001", "20002", "7", "/srv/homes/alice"])
        self.assertEqual(argv[9].split(","), ["RLIMIT_AS=1073741824", "RLIMIT_NOFILE=256",
                                              "RLIMIT_FSIZE=1048576", "RLIMIT_NPROC=64"])
        self.assertEqual(argv[10:], ["/k/python", "python", "-m", "k"])
        # limits before the switch, the switch before the exec
        order = [CONFINE.index(step) for step in ("setrlimit", "setgroups", "setresgid",
                                                  "setresuid", "os.execv")]
        self.assertEqual(order, sorted(order))

    def test_shared_account_keeps_the_uid_and_leaves_nproc(self):
        """Without a switch the uid is -1 and RLIMIT_NPROC (which would count the service) is unset."""
        argv = Confinement(Limits(), switch_accounts=False).command("/py", self.ACCOUNT, "/k", [])
        self.assertEqual(argv[5:7], ["-1", "-1"])
        self.assertNotIn("RLIMIT_NPROC", argv[9])

    def test_environment_keeps_no_service_secrets(self):
        """Only the kept variables pass; HOME and USER are the account's."""
        env = Confinement().environment({"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/root",
                                         "AWS_SECRET_ACCESS_KEY": "x", "WEBKERNEL_TOKEN": "y",
                                         "PYTHONPATH": "/srv/webkernel"}, self.ACCOUNT)
        self.assertEqual(env, {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/srv/homes/alice",
                               "USER": "wk-alice", "LOGNAME": "wk-alice", "SHELL": "/bin/sh"})


class FixedAccounts:
    """Accounts that give every user one prepared account."""

    def __init__(self, account):
        self.account = account
        self.asked = []

    def account_for(self, user):
        from twisted.internet import defer
        self.asked.append(user)
        return defer.succeed(self.account)


class ConfinedLaunchTests(TestCase):
    """KernelLauncher in multi-user mode, on a fake process reactor."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="wk")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        specs = os.path.join(self.root, "kernels")
        os.makedirs(os.path.join(specs, "python3"))
        with open(os.path.join(specs, "python3", "kernel.json"), "w") as f:
            json.dump({"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "Python", "language": "python"}, f)
        self.home = os.path.join(self.root, "alice")
        os.mkdir(self.home, 0o700)
        # the test's own uid: chown works without root
        self.account = Account("wk-alice", os.geteuid(), os.getegid(), self.home)
        self.accounts = FixedAccounts(self.account)
        self.reactor = FakeProcessReactor()
        self.kernel_dir = os.path.join(self.root, "runtime")
        self.launcher = KernelLauncher(
            self.reactor, self.kernel_dir,
            spec_manager=KernelSpecManager(kernel_dirs=[specs], ensure_native_kernel=False),
            environ={"PATH": os.environ["PATH"], "SECRET": "s"}, accounts=self.accounts,
            confinement=Confinement(Limits(memory=2 ** 31)))

    def launch(self):
        return self.successResultOf(self.launcher.launch("python3", KERNEL_ID, owner="alice"))

    def test_runs_as_the_owner_in_their_directory(self):
        """The owner's account is asked for; the wrapper runs in their directory, without secrets."""
        self.launch()
        spawned = self.reactor.spawned[0]
        self.assertEqual(self.accounts.asked, ["alice"])
        self.assertEqual(spawned.args[4], CONFINE)
        self.assertEqual(spawned.args[5], str(os.geteuid()))
        self.assertEqual(spawned.path, self.home)
        self.assertEqual(spawned.env["HOME"], self.home)
        self.assertNotIn("SECRET", spawned.env)

    def test_ipc_sockets_in_the_home_and_a_private_copy_for_the_kernel(self):
        """Transport ipc under the home; the kernel reads its own 0600 copy, not the service's file."""
        kernel = self.launch()
        self.assertEqual(kernel.connection_info["transport"], "ipc")
        prefix = records.ipc_prefix(self.home, KERNEL_ID)
        self.assertEqual(kernel.connection_info["ip"], prefix)
        copy = prefix + ".json"
        self.assertIn(copy, self.reactor.spawned[0].args)
        self.assertNotIn(kernel.connection_file, self.reactor.spawned[0].args)
        info = os.stat(copy)
        self.assertEqual((stat.S_IMODE(info.st_mode), info.st_uid), (0o600, self.account.uid))
        with open(copy) as f, open(kernel.connection_file) as g:
            self.assertEqual(json.load(f), json.load(g))

    def test_a_planted_link_is_not_followed(self):
        """A symlink the user put where the copy goes is replaced, its target left alone."""
        target = os.path.join(self.root, "victim")
        with open(target, "w") as f:
            f.write("untouched")
        os.symlink(target, records.ipc_prefix(self.home, KERNEL_ID) + ".json")
        self.launch()
        with open(target) as f:
            self.assertEqual(f.read(), "untouched")
        self.assertFalse(os.path.islink(records.ipc_prefix(self.home, KERNEL_ID) + ".json"))

    def test_removing_files_removes_the_copy_and_the_sockets(self):
        """The copy and the socket files in the home go with the launch's files."""
        kernel = self.launch()
        prefix = kernel.connection_info["ip"]
        socket_file = f"{prefix}-{kernel.connection_info['shell_port']}"
        open(socket_file, "w").close()
        kernel.remove_files()
        self.assertEqual(sorted(os.listdir(self.home)), [])

    def test_without_accounts_nothing_changes(self):
        """A launcher without accounts still writes loopback tcp and execs NEW_SESSION."""
        launcher = KernelLauncher(self.reactor, self.kernel_dir,
                                  spec_manager=self.launcher.spec_manager, environ={"PATH": "/bin"})
        kernel = self.successResultOf(launcher.launch("python3", KERNEL_ID))
        self.assertEqual(kernel.connection_info["transport"], "tcp")
        self.assertNotIn(CONFINE, self.reactor.spawned[0].args)


class IsolationChecksTests(TestCase):
    """What the start-up checks say, and that they say what to fix."""

    def test_not_root_is_refused_naming_the_unsafe_flag(self):
        """A service that is not root is told it cannot switch users, and of --unsafe-shared-account."""
        why = isolation_checks.cannot_switch_accounts(euid=1000)
        self.assertIn("needs root", why)
        self.assertIn("--unsafe-shared-account", why)
        self.assertIsNone(isolation_checks.cannot_switch_accounts(euid=0, which=lambda t: "/x"))
        self.assertIn("useradd", isolation_checks.cannot_switch_accounts(
            euid=0, which=lambda t: None))

    def test_the_blocking_directory_is_named(self):
        """A 0700 directory on the path is named with its mode."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        os.chmod(root, 0o755)
        inner = os.path.join(root, "private", "bin")
        os.makedirs(inner)
        os.chmod(os.path.join(root, "private"), 0o700)
        self.assertEqual(isolation_checks.blocking_directory(inner),
                         f"{root}/private is mode 0700 (others cannot enter it)")

    def test_a_failing_probe_says_what_to_fix(self):
        """The interpreter failing as the probe account gives a message with the fix."""
        class Done:
            returncode, stdout, stderr = 1, "", "ModuleNotFoundError: No module named 'ipykernel'"
        specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
        why = isolation_checks.kernelspec_problem(specs, "python3", run=lambda *a, **k: Done())
        self.assertIn("No module named 'ipykernel'", why)
        self.assertIn("import ipykernel_launcher", why)
        self.assertIn("JUPYTER_PATH", why)
        ran = []
        self.assertIsNone(isolation_checks.kernelspec_problem(
            specs, "python3", run=lambda argv, **k: ran.append((argv, k)) or type(
                "Ok", (), {"returncode": 0})()))
        self.assertEqual(ran[0][1]["user"], __import__("pwd").getpwnam("nobody").pw_uid)
        self.assertEqual(ran[0][1]["extra_groups"], [])

    def test_home_root_too_long_for_socket_paths(self):
        """A --home-root that leaves no room for Unix socket paths is refused."""
        self.assertRaises(isolation_checks.IsolationUnavailable,
                          isolation_checks.prepare_home_root, "/" + "x" * 60)


class UsersFileAccountTests(TestCase):
    """The users file's optional ``account`` field."""

    def test_account_round_trip_and_validation(self):
        """An account name is kept through save and load; a bad one is refused."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "users.json")
        store.save(path, {"tess": store.User.create("tess", "teacher", "a password",
                                                    iterations=10, account="tess")})
        self.assertEqual(store.load(path)["tess"].account, "tess")
        self.assertEqual(store.load(path)["tess"].with_password("another one").account, "tess")
        self.assertRaises(ValueError, store.User.create, "tess", "teacher", "a password",
                          account="../root")
        with open(path) as f:
            document = json.load(f)
        document["users"]["tess"]["account"] = "bad name!"
        with open(path, "w") as f:
            json.dump(document, f)
        self.assertRaises(store.UsersFileError, store.load, path)


@pytest.mark.integration
class AdoptionTests(TestCase):
    """A confined kernel is found again by the copy of its connection file in its argv."""

    def test_running_kernel_recognised_by_its_account_copy(self):
        """The process given <home>/.kernel-<id[:12]>.json is the kernel of kernel-<id>.json; another id's is not."""
        import subprocess
        from broker.kernel.adoption import kernel_process_running
        process = subprocess.Popen([sys.executable, "-c",
                                    "import sys; print('running', flush=True); sys.stdin.read()",
                                    f"/srv/homes/alice/.kernel-{KERNEL_ID[:12]}.json"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(process.wait)
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.stdin.close)
        # Popen returns as the child's exec begins, before its /proc/<pid>/cmdline shows the
        # new argv (empty until then): the kernel being recognised is one already running
        self.assertEqual(process.stdout.readline(), b"running\n")
        self.assertTrue(kernel_process_running(process.pid, f"/k/kernel-{KERNEL_ID}.json"))
        self.assertFalse(kernel_process_running(process.pid, f"/k/kernel-{'f' * 32}.json"))
