"""The notebook service joined to an external router (``--router … --notebooks-only``): its wiring.

tests/test_crossbar_notebooks.py runs it against a real Crossbar.io; these
check, without a network, what it joins with and the limits it keeps.
"""

import tempfile

import txaio
from autobahn.wamp import types
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from broker import tap
from broker.auth import NOTEBOOKS_AUTHID
from broker.classroom.notebooks import UserFolders
from broker.notebook import uris
from broker.notebook.service import SHARED_INVOKE, RemoteNotebookService
from broker.notebook.session import NotebookSession
from broker.notebook.store import NotebookDirectory
from broker.realm_member import RECONNECT_MAX_DELAY

ROUTER = ["--router", "ws://127.0.0.1:1/ws-services", "--token", "n", "--notebooks-only"]


def wired(*args):
    options = tap.Options()
    options.parseOptions([*ROUTER, *args])
    (notebooks,) = list(tap.makeService(options, reactor=Clock()))
    return notebooks


class OptionsTests(SynchronousTestCase):
    """What ``--notebooks-only`` is given and refuses."""

    def test_it_is_the_only_service(self):
        """--notebooks-only makes one RemoteNotebookService with the notebook limits and router pings of the options."""
        folder = tempfile.mkdtemp()
        notebooks = wired("--notebook-dir", folder, "--notebook-threads", "3",
                          "--notebook-queue", "5", "--max-notebook-size", "1000",
                          "--router-ping", "2", "--router-ping-timeout", "4")
        self.assertIsInstance(notebooks, RemoteNotebookService)
        self.assertEqual((notebooks.directory.root, notebooks.directory.max_size), (folder, 1000))
        self.assertEqual((notebooks.pool.max, notebooks.workers.limit), (3, 5))
        self.assertEqual(notebooks.transport["options"],
                         {"autoPingInterval": 2.0, "autoPingTimeout": 4.0})
        self.assertEqual(notebooks.transport["max_retry_delay"], RECONNECT_MAX_DELAY)

    def test_classroom_gives_each_user_a_folder(self):
        """With --classroom the callers' folders are under --home-root (UserFolders)."""
        home_root = tempfile.mkdtemp()
        notebooks = wired("--classroom", "--home-root", home_root, "--max-notebook-size", "99")
        self.assertIsInstance(notebooks.folders, UserFolders)
        self.assertEqual((notebooks.folders.root, notebooks.folders.max_size), (home_root, 99))

    def test_refusals(self):
        """Without --router, with --users, --crossbar-authorizer or --pool, or --notebook-dir with --classroom: a usage error."""
        for args in (["--notebooks-only", "--token", "n"],
                     [*ROUTER, "--crossbar-authorizer"],
                     [*ROUTER, "--pool", "python3=1"],
                     [*ROUTER, "--classroom", "--notebook-dir", tempfile.mkdtemp()]):
            self.assertRaises(usage.UsageError, tap.Options().parseOptions, args)


class JoiningTests(SynchronousTestCase):
    """How the service joins, and what each of its sessions registers."""

    def test_joins_as_webkernel_notebooks_and_retries_for_ever(self):
        """The service connects to the router with the webkernel_notebooks ticket, retrying without end."""
        reactor = MemoryReactorClock()
        txaio.use_twisted()
        previous, txaio.config.loop = txaio.config.loop, reactor  # Autobahn's retry timers
        self.addCleanup(setattr, txaio.config, "loop", previous)
        notebooks = RemoteNotebookService("ws://10.231.0.2:8080/ws", "webkernel", "secret", reactor,
                                          tempfile.mkdtemp())
        notebooks.startService()
        self.addCleanup(notebooks.pool.stop)
        reactor.advance(0)
        [(address, port, _, _, _)] = reactor.tcpClients
        self.assertEqual((address, port), ("10.231.0.2", 8080))
        [transport] = notebooks.component._transports
        self.assertEqual(transport.max_retries, -1)
        self.assertEqual(notebooks.component._authentication,
                         {"ticket": {"authid": NOTEBOOKS_AUTHID, "ticket": "secret"}})

    def test_every_session_shares_the_workers_and_registers_shared(self):
        """Each (re)connection's session uses the one bounded pool and registers round-robin."""
        notebooks = RemoteNotebookService("ws://x/ws", "webkernel", "t", Clock(), tempfile.mkdtemp())
        first, second = (notebooks._joining(types.ComponentConfig(realm="webkernel"))
                         for _ in range(2))
        self.assertEqual({first.invoke, second.invoke}, {SHARED_INVOKE})
        self.assertIs(first.run.__self__, second.run.__self__)
        self.assertIs(notebooks.session, second)

    def test_the_invocation_policy_reaches_the_registrations(self):
        """A session made with invoke registers the three procedures with that policy."""
        session = NotebookSession(types.ComponentConfig(realm="r"),
                                  NotebookDirectory(tempfile.mkdtemp()), invoke="roundrobin")
        registered = []
        session.register = lambda f, uri, options: registered.append(
            (uri, options.invoke)) or defer.succeed(None)
        session.onJoin(types.SessionDetails("r", 1))
        self.assertEqual(registered, [(uri, "roundrobin") for uri in (
            uris.NOTEBOOKS_LIST, uris.NOTEBOOKS_GET, uris.NOTEBOOKS_SAVE)])

    def test_stop_ends_the_retries_and_the_pool(self):
        """Stopped while waiting to try the router again, the service tries no more, and its thread pool is stopped."""
        reactor = MemoryReactorClock()
        txaio.use_twisted()
        previous, txaio.config.loop = txaio.config.loop, reactor
        self.addCleanup(setattr, txaio.config, "loop", previous)
        notebooks = RemoteNotebookService("ws://10.231.0.2:8080/ws", "webkernel", "t", reactor,
                                          tempfile.mkdtemp())
        notebooks.startService()
        reactor.advance(0)
        [connector] = reactor.connectors
        [(_, _, factory, _, _)] = reactor.tcpClients
        factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        reactor.advance(0)  # the component now waits before its next attempt
        self.successResultOf(notebooks.stopService())
        reactor.pump([1] * int(RECONNECT_MAX_DELAY * 2))
        self.assertEqual(len(reactor.tcpClients), 1)
        self.assertFalse(notebooks.pool.started)
