"""The ``twistd webkernel`` plugin: options, defaults and the service it builds."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from twisted.application.service import IServiceCollection
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

import plugins
from broker import tap
from broker.auth import IAuthenticatorFactory
from broker.users import store


class OptionsTests(SynchronousTestCase):
    """Command-line options and their secure defaults."""

    def parse(self, *argv):
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_front_takes_a_websocket_url_and_serves_the_page_only(self):
        """--front needs a ws(s) URL fit for a CSP, and excludes running a router, users or the authorizer."""
        self.assertEqual(self.parse("--front", "ws://10.0.0.7:8080/ws")["front"],
                         "ws://10.0.0.7:8080/ws")
        for argv in (["--front", "http://x/ws"], ["--front", "ws://x/ws; script-src *"],
                     ["--front", "ws://x/ws", "--router", "ws://x/ws", "--token", "t"]):
            self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_front_auth_is_anonymous_or_ticket_and_for_a_front_only(self):
        """--front-auth ticket (a classroom Crossbar.io) needs --front; --front-allow-plain-ws needs it."""
        options = self.parse("--front", "ws://10.0.0.7:8080/ws")
        self.assertEqual((options["front-auth"], options["front-allow-plain-ws"]), ("anonymous", 0))
        options = self.parse("--front", "ws://x/ws", "--front-auth", "ticket",
                             "--front-allow-plain-ws")
        self.assertEqual((options["front-auth"], options["front-allow-plain-ws"]), ("ticket", 1))
        for argv in (["--front", "ws://x/ws", "--front-auth", "wampcra"],
                     ["--front-auth", "ticket"],
                     ["--front", "ws://x/ws", "--front-allow-plain-ws"]):
            self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_defaults_are_secure(self):
        """By default: loopback only, a random token, realm webkernel, not anonymous."""
        options = self.parse()
        self.assertEqual(options["listen"], ["tcp:8080:interface=127.0.0.1"])
        self.assertEqual(options["realm"], "webkernel")
        self.assertFalse(options["anonymous"])
        self.assertGreaterEqual(len(options["token"]), 24)
        self.assertNotEqual(options["token"], self.parse()["token"])
        self.assertEqual(options["max-output"], 16 * 1024 * 1024)
        self.assertEqual((options["allowed-host"], options["max-body"], options["header-timeout"]),
                         ([], 4 * 1024 * 1024, 20))

    def test_repeatable_options(self):
        """--listen and --allowed-origin may be given several times."""
        options = self.parse("--listen", "tcp:1", "--listen", "unix:/tmp/x",
                             "--allowed-origin", "https://a", "--allowed-origin", "https://b",
                             "--token", "t", "--realm", "r", "--max-message-size", "1000")
        self.assertEqual(options["listen"], ["tcp:1", "unix:/tmp/x"])
        self.assertEqual(options["allowed-origin"], ["https://a", "https://b"])
        self.assertEqual(self.parse("--allowed-host", "a.example", "--allowed-host", "b")["allowed-host"],
                         ["a.example", "b"])
        self.assertEqual((options["token"], options["realm"], options["max-message-size"]),
                         ("t", "r", 1000))

    def test_bad_values_are_usage_errors(self):
        """An empty token or a non-positive size is refused with a usage error."""
        self.assertRaises(usage.UsageError, self.parse, "--token", "")
        self.assertRaises(usage.UsageError, self.parse, "--max-output", "0")
        self.assertRaises(usage.UsageError, self.parse, "--max-message-size", "big")
        self.assertRaises(usage.UsageError, self.parse, "--notebook-dir", "/no/such/directory")

    def test_make_service(self):
        """makeService builds a router service and one listener per endpoint."""
        options = self.parse("--listen", "tcp:0", "--listen", "tcp:0:interface=::1")
        top = tap.makeService(options, reactor=Clock())
        self.assertTrue(IServiceCollection.providedBy(top))
        kinds = [type(s).__name__ for s in top]
        self.assertEqual(kinds, ["RouterService", "KernelHostService", "NotebookService",
                                 "ListeningService", "ListeningService"])

    def test_notebook_limits_reach_the_notebook_service(self):
        """--max-notebook-size, --notebook-threads and --notebook-queue configure the notebook service."""
        top = tap.makeService(self.parse("--listen", "tcp:0", "--max-notebook-size", "1000",
                                         "--notebook-threads", "3", "--notebook-queue", "5"),
                              reactor=Clock())
        [notebooks] = [s for s in top if type(s).__name__ == "NotebookService"]
        self.assertEqual((notebooks.directory.max_size, notebooks.pool.max, notebooks.workers.limit),
                         (1000, 3, 5))
        self.assertRaises(usage.UsageError, self.parse, "--notebook-queue", "0")

    def test_every_timer_runs_on_the_given_reactor(self):
        """The site, the WebSocket and RawSocket factories and the port's sniffer all get makeService's reactor, never the global one."""
        clock = Clock()
        top = tap.makeService(self.parse("--listen", "tcp:0"), reactor=clock)
        factory = [s for s in top if type(s).__name__ == "ListeningService"][0].factory
        factory = factory.wrappedFactory   # inside broker.connection_limits.LimitedFactory
        websocket = factory.web.resource.children[b"ws"]._factory
        self.assertEqual([factory.clock, factory.web.reactor, factory.rawsocket.reactor,
                          websocket.reactor], [clock] * 4)


    def test_connections_are_limited(self):
        """Each port's factory caps connections per address and in all, as the options say."""
        top = tap.makeService(self.parse("--listen", "tcp:0", "--max-connections", "77",
                                         "--max-connections-per-address", "7"), reactor=Clock())
        factory = [s for s in top if type(s).__name__ == "ListeningService"][0].factory
        self.assertEqual((factory.total, factory.per_address), (77, 7))
        default = [s for s in tap.makeService(self.parse("--listen", "tcp:0"), reactor=Clock())
                   if type(s).__name__ == "ListeningService"][0].factory
        self.assertEqual(default.per_address, 512)
        self.assertGreaterEqual(default.total, 64)


class UsersOptionsTests(SynchronousTestCase):
    """--users: multi-user mode, and what it excludes."""

    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.path = os.path.join(self.directory, "users.json")
        store.save(self.path, {"tess": store.User.create("tess", "teacher", "t" * 8, 10)})

    def tearDown(self):
        shutil.rmtree(self.directory)

    def parse(self, *argv):
        if "--users" in argv and "--home-root" not in argv:
            argv = (*argv, "--home-root", os.path.join(self.directory, "homes"))
            if "--isolated" in argv:
                argv = tuple(a for a in argv if a != "--isolated")
            else:
                argv = (*argv, "--unsafe-shared-account")
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_users_mode_has_no_service_token(self):
        """With --users no token is made, the URL carries none, and the users file is watched."""
        options = self.parse("--users", self.path, "--listen", "tcp:0")
        self.assertIsNone(options["token"])
        top = tap.makeService(options, reactor=Clock())
        self.assertIn("UsersService", [type(s).__name__ for s in top])
        router = next(s for s in top if type(s).__name__ == "RouterService").router
        self.assertIsNone(router.config["token"])
        self.assertEqual(set(router.factories), {"ticket", "wampcra"})
        listener = next(s for s in top if type(s).__name__ == "ListeningService")
        self.assertEqual(listener.url_query, "")

    def test_remote_host_with_classroom_rules(self):
        """--router --classroom gives the remote kernel host the classroom policy; --classroom alone is refused."""
        from broker.classroom.policy import ClassroomPolicy
        options = self.parse("--router", "ws://127.0.0.1:1/ws", "--token", "h", "--classroom",
                             "--max-kernels-per-user", "3")
        (host_service,) = list(tap.makeService(options, reactor=Clock()))
        policy = host_service.options["policy"]
        self.assertIsInstance(policy, ClassroomPolicy)
        self.assertEqual(policy.max_per_user, 3)
        self.assertRaises(usage.UsageError, self.parse, "--classroom")
        plain = self.parse("--router", "ws://127.0.0.1:1/ws", "--token", "h")
        self.assertIsNone(list(tap.makeService(plain, reactor=Clock()))[0].options["policy"])

    def test_users_file_readable_by_others_is_warned_about(self):
        """A users file other accounts can read is named in a warning at start."""
        from twisted.logger import globalLogPublisher, formatEvent
        seen = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        os.chmod(self.path, 0o644)
        tap.makeService(self.parse("--users", self.path, "--listen", "tcp:0"), reactor=Clock())
        self.assertTrue(any("chmod 600" in formatEvent(e) for e in seen))

    def test_users_mode_refusals(self):
        """A missing or malformed users file, or --token/--anonymous/--router with --users, is a usage error."""
        missing = os.path.join(self.directory, "missing.json")
        self.assertIn("webkernel-users", str(self.assertRaises(
            usage.UsageError, self.parse, "--users", missing)))
        for extra in (["--token", "t"], ["--anonymous"], ["--router", "ws://h/ws"]):
            self.assertRaises(usage.UsageError, self.parse, "--users", self.path, *extra)
        with open(self.path, "w") as f:
            f.write("[]")
        self.assertRaises(usage.UsageError, self.parse, "--users", self.path)


    def isolation_possible(self, why_not=None):
        """Pretend this service is root and its kernelspec usable by others (or not: *why_not*)."""
        self.patch(tap.isolation_checks, "cannot_switch_accounts", lambda: why_not)
        self.patch(tap.isolation_checks, "kernelspec_problem", lambda *a: None)

    def test_kernels_run_as_user_accounts(self):
        """--users wires per-user accounts from --user-prefix, --uid-range, --home-root, and the limits."""
        from broker.kernel.accounts import UserAccounts
        self.isolation_possible()
        os.chmod(self.directory, 0o755)  # the home root must be reachable by the accounts
        options = self.parse("--users", self.path, "--listen", "tcp:0", "--isolated",
                             "--user-prefix", "wkt-", "--uid-range", "30000-30009",
                             "--kernel-memory", "1GiB", "--kernel-nice", "3")
        host = next(s for s in tap.makeService(options, reactor=Clock())
                    if type(s).__name__ == "KernelHostService")
        accounts, confinement = host.launcher.accounts, host.launcher.confinement
        self.assertIsInstance(accounts, UserAccounts)
        self.assertEqual((accounts.prefix, accounts.uid_range), ("wkt-", (30000, 30009)))
        self.assertEqual(accounts.home_root, os.path.join(self.directory, "homes"))
        self.assertEqual(stat.S_IMODE(os.stat(accounts.home_root).st_mode), 0o711)
        self.assertTrue(confinement.switch_accounts)
        self.assertEqual((confinement.limits.memory, confinement.limits.nice), (2 ** 30, 3))

    def test_users_mode_refused_where_kernels_cannot_switch(self):
        """Not root (or a kernelspec others cannot run): usage error with the reason; the flag overrides."""
        self.isolation_possible(why_not="needs root; or --unsafe-shared-account")
        error = self.assertRaises(usage.UsageError, self.parse, "--users", self.path, "--isolated")
        self.assertIn("--unsafe-shared-account", str(error))
        self.parse("--users", self.path)  # with --unsafe-shared-account
        self.isolation_possible()
        os.chmod(self.directory, 0o755)
        self.patch(tap.isolation_checks, "kernelspec_problem", lambda *a: "/root is mode 0700")
        error = self.assertRaises(usage.UsageError, self.parse, "--users", self.path, "--isolated")
        self.assertIn("/root is mode 0700", str(error))

    def test_unsafe_shared_account_is_logged_loudly(self):
        """--unsafe-shared-account is a critical log line at every start, and kernels keep the uid."""
        from twisted.logger import LogLevel, globalLogPublisher, formatEvent
        seen = []
        globalLogPublisher.addObserver(seen.append)
        self.addCleanup(globalLogPublisher.removeObserver, seen.append)
        top = tap.makeService(self.parse("--users", self.path, "--listen", "tcp:0"),
                              reactor=Clock())
        self.assertTrue(any(e.get("log_level") == LogLevel.critical
                            and "unsafe-shared-account" in formatEvent(e) for e in seen))
        host = next(s for s in top if type(s).__name__ == "KernelHostService")
        self.assertFalse(host.launcher.confinement.switch_accounts)

    def test_limit_options(self):
        """Sizes take units; a file size limit below the log cap and bad nice values are refused."""
        self.assertEqual(tap._size("2GiB"), 2 * 1024 ** 3)
        self.assertEqual(tap._size("512M"), 512 * 1024 ** 2)
        self.assertEqual(tap._size("4096"), 4096)
        self.assertRaises(ValueError, tap._size, "lots")
        self.assertRaises(usage.UsageError, self.parse, "--users", self.path, "--kernel-nice", "-5")
        self.assertRaises(usage.UsageError, self.parse, "--users", self.path,
                          "--kernel-file-size", "1MiB")


class PluginTests(SynchronousTestCase):
    """The drop-in plugins are found and implement their interfaces."""

    def test_authenticator_plugins(self):
        """ticket, wampcra and anonymous are found by getPlugins and build per config."""
        found = {p.authmethod: p for p in getPlugins(IAuthenticatorFactory, plugins)}
        self.assertEqual(set(found), {"ticket", "wampcra", "anonymous"})
        for factory in found.values():
            verifyObject(IAuthenticatorFactory, factory)
        self.assertIsNone(found["anonymous"].build({"anonymous": False}))
        self.assertIsNone(found["ticket"].build({"token": None}))
        self.assertIsNotNone(found["ticket"].build({"token": "x"}))
        self.assertIsNone(found["wampcra"].build({"token": "x"}))
        self.assertIsNotNone(found["wampcra"].build({"users": object()}))
        self.assertIsNotNone(found["ticket"].build({"token": None, "users": object()}))

    @pytest.mark.integration
    def test_installed_twistd_lists_webkernel(self):
        """The installed package (not the source tree) gives `twistd webkernel`."""
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        with tempfile.TemporaryDirectory() as elsewhere:
            result = subprocess.run([twistd, "--help"], cwd=elsewhere, env=env,
                                    capture_output=True, text=True, timeout=60)
        self.assertIn("webkernel", result.stdout)
