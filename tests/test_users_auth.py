"""Signing in as a user (WAMP-CRA and ticket), the same refusal for every failure, slowdown, reloads."""

import os
import shutil
import tempfile

from autobahn.wamp import message
from autobahn.wamp.auth import compute_wcs, derive_key
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.auth import DefaultAuthorizer
from broker.router.router import Router, authenticator_factories
from broker.testing import CLIENT_ROLES, MemoryChannel
from broker.users import store
from broker.users.authenticators import REFUSED
from broker.users.directory import UserDirectory
from broker.users.throttle import FailureThrottle, address_of

PASSWORDS = {"alice": "alice password", "bob": "bob password", "tess": "tess password"}
ROLES = {"alice": "student", "bob": "student", "tess": "teacher"}


class UsersRouterTestCase(SynchronousTestCase):
    """A router in multi-user mode on a fake clock, with a users file of three users."""

    def setUp(self):
        self.directory_path = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory_path)
        self.path = os.path.join(self.directory_path, "users.json")
        store.save(self.path, {n: store.User.create(n, ROLES[n], p, iterations=10)
                               for n, p in PASSWORDS.items()})
        self.clock = Clock()
        self.ended = []
        self.users = UserDirectory(self.path, self.clock, on_change=self.users_changed)
        config = {"token": None, "anonymous": False, "host_token": "host secret",
                  "users": self.users}
        self.router = Router.single_realm("realm1", DefaultAuthorizer(), self.clock, config,
                                          authenticator_factories(config))
        self.realm = self.router.realms["realm1"]

    def users_changed(self, names):
        self.ended.append(names)
        self.router.end_sessions(names, errors.USER_CHANGED, "changed")

    def connect(self, authmethods, authid, peer="tcp4:198.51.100.7:5000"):
        channel = MemoryChannel(peer)
        session = self.router.new_session(channel)
        session.message_received(message.Hello("realm1", CLIENT_ROLES, authmethods=authmethods,
                                               authid=authid))
        return session, channel

    def ticket(self, authid, password, peer="tcp4:198.51.100.7:5000"):
        session, channel = self.connect(["ticket"], authid, peer)
        self.assertIsInstance(channel.sent[-1], message.Challenge)
        session.message_received(message.Authenticate(password))
        return session, channel.sent[-1]

    def cra(self, authid, password, peer="tcp4:198.51.100.7:5000"):
        session, channel = self.connect(["wampcra"], authid, peer)
        challenge = channel.sent[-1]
        self.assertIsInstance(challenge, message.Challenge)
        extra = challenge.extra
        key = derive_key(password, extra["salt"], extra["iterations"], extra["keylen"])
        session.message_received(message.Authenticate(
            compute_wcs(key, extra["challenge"]).decode()))
        return session, channel.sent[-1]

    def assertRefused(self, answer):
        self.assertIsInstance(answer, message.Abort)
        self.assertEqual((answer.reason, answer.message), (errors.NOT_AUTHORIZED, REFUSED))


class SignInTests(UsersRouterTestCase):
    """Who gets in, as whom."""

    def test_wampcra_welcomes_the_user_with_their_role(self):
        """WAMP-CRA with the right password: authid is the name, authrole the file's role."""
        session, answer = self.cra("tess", PASSWORDS["tess"])
        self.assertIsInstance(answer, message.Welcome)
        self.assertEqual((answer.authid, answer.authrole, answer.authmethod),
                         ("tess", "teacher", "wampcra"))

    def test_ticket_is_the_password(self):
        """Ticket with the user's password: welcomed as that user."""
        session, answer = self.ticket("alice", PASSWORDS["alice"])
        self.assertEqual((answer.authid, answer.authrole), ("alice", "student"))

    def test_every_failure_looks_the_same(self):
        """Unknown user, wrong password, another user's password: the same not_authorized, both methods."""
        for sign_in in (self.cra, self.ticket):
            self.assertRefused(sign_in("nobody", "whatever password")[1])
            self.assertRefused(sign_in("alice", "wrong password")[1])
            self.assertRefused(sign_in("alice", PASSWORDS["bob"])[1])
            self.assertRefused(sign_in(None, PASSWORDS["alice"])[1])

    def test_unknown_names_get_a_stable_challenge(self):
        """A name that is no user is challenged like a user: same parameters, the same salt each time."""
        first = self.connect(["wampcra"], "nobody")[1].sent[-1].extra
        second = self.connect(["wampcra"], "nobody")[1].sent[-1].extra
        real = self.connect(["wampcra"], "alice")[1].sent[-1].extra
        self.assertEqual(first["salt"], second["salt"])
        self.assertEqual(sorted(first), sorted(real))
        self.assertEqual(len(first["salt"]), len(real["salt"]))

    def test_service_token_admits_no_one(self):
        """In multi-user mode the service token is no ticket (there is none)."""
        self.assertRefused(self.ticket("alice", "")[1])
        self.assertNotIn("anonymous", self.router.factories)

    def test_kernel_host_keeps_its_host_token(self):
        """The authid webkernel_host with --host-token still joins as the kernel host."""
        session, answer = self.ticket("webkernel_host", "host secret")
        self.assertEqual(answer.authrole, "webkernel_host")


class SlowdownTests(UsersRouterTestCase):
    """Repeated failures make the next attempt wait, per user and per address."""

    def test_user_is_slowed_after_failures(self):
        """After 5 failures for alice even her right password is refused until the wait is over."""
        for _ in range(6):
            self.assertRefused(self.ticket("alice", "wrong password", peer=f"tcp4:10.0.0.{_}:1")[1])
        self.assertRefused(self.cra("alice", PASSWORDS["alice"], peer="tcp4:10.9.9.9:1")[1])
        self.clock.advance(1.0)
        self.assertIsInstance(self.cra("alice", PASSWORDS["alice"])[1], message.Welcome)

    def test_address_is_slowed_across_users(self):
        """One address guessing many names is slowed down even if no name fails often."""
        for i in range(21):
            self.assertRefused(self.ticket(f"guess{i}", "x" * 8, peer="tcp4:203.0.113.5:1")[1])
        self.assertRefused(self.ticket("bob", PASSWORDS["bob"], peer="tcp4:203.0.113.5:2")[1])
        self.assertIsInstance(self.ticket("bob", PASSWORDS["bob"], peer="tcp4:203.0.113.6:2")[1],
                              message.Welcome)

    def test_made_up_names_share_one_count(self):
        """Names that cannot be users (here 10 kB long) are counted under one small key."""
        for i in range(3):
            self.assertRefused(self.ticket(str(i) * 10000, "x" * 8)[1])
        self.assertEqual(self.users.throttle._records["user:?"].failures, 3)
        self.assertTrue(all(len(key) < 64 for key in self.users.throttle._records))

    def test_waits_grow_and_are_capped(self):
        """Each failure past the free ones doubles the wait, up to a minute."""
        throttle = FailureThrottle(Clock())
        waits = []
        for _ in range(15):
            throttle.failed(["user:a"])
            waits.append(throttle.wait(["user:a"]))
        self.assertEqual(waits[:8], [0, 0, 0, 0, 0, 1, 2, 4])
        self.assertEqual(waits[-1], 60)

    def test_table_is_bounded(self):
        """The table of failures keeps at most max_keys keys and forgets idle ones."""
        clock = Clock()
        throttle = FailureThrottle(clock, max_keys=100)
        for i in range(1000):
            throttle.failed([f"address:{i}"])
        self.assertEqual(len(throttle), 100)
        clock.advance(16 * 60)
        throttle.failed(["user:x"])
        self.assertEqual(len(throttle), 1)

    def test_address_of_peer(self):
        """The port is not part of the address."""
        self.assertEqual(address_of("tcp4:127.0.0.1:40312"), "127.0.0.1")
        self.assertEqual(address_of("tcp6:::1:40312"), "::1")
        self.assertEqual(address_of("unix"), "unix")


class ReloadTests(UsersRouterTestCase):
    """Changes to the users file take effect without a restart."""

    def save(self, users):
        store.save(self.path, users)

    def test_added_user_signs_in_at_once(self):
        """A user added to the file can sign in without waiting for the poll."""
        users = store.load(self.path)
        users["carl"] = store.User.create("carl", "observer", "carl password", iterations=10)
        self.save(users)
        self.assertEqual(self.cra("carl", "carl password")[1].authrole, "observer")

    def test_removed_user_sessions_end(self):
        """Removing a user ends their open sessions (at the next poll) and only theirs."""
        self.users.start()
        alice, _ = self.cra("alice", PASSWORDS["alice"])
        bob, _ = self.cra("bob", PASSWORDS["bob"])
        users = store.load(self.path)
        del users["alice"]
        self.save(users)
        self.clock.advance(2.0)
        self.assertEqual(self.ended, [["alice"]])
        self.assertEqual((alice.state, bob.state), ("closed", "joined"))
        goodbye = alice.channel.sent[-1]
        self.assertEqual(goodbye.reason, errors.USER_CHANGED)
        self.assertRefused(self.cra("alice", PASSWORDS["alice"])[1])

    def test_password_change_ends_sessions(self):
        """A new password ends the user's open sessions; the old password stops working."""
        self.users.start()
        alice, _ = self.ticket("alice", PASSWORDS["alice"])
        users = store.load(self.path)
        users["alice"] = users["alice"].with_password("new alice password")
        self.save(users)
        self.clock.advance(2.0)
        self.assertEqual(alice.state, "closed")
        self.assertRefused(self.ticket("alice", PASSWORDS["alice"])[1])
        self.assertIsInstance(self.ticket("alice", "new alice password")[1], message.Welcome)

    def test_broken_file_keeps_the_old_users(self):
        """A malformed file is logged and ignored: the users read before stay."""
        self.users.start()
        alice, _ = self.ticket("alice", PASSWORDS["alice"])
        with open(self.path + ".tmp", "w") as f:
            f.write("{broken")
        os.replace(self.path + ".tmp", self.path)
        self.clock.advance(2.0)
        self.assertEqual(alice.state, "joined")
        self.assertEqual(len(self.flushLoggedErrors()), 0)
        self.assertIsInstance(self.ticket("bob", PASSWORDS["bob"])[1], message.Welcome)
        self.users.stop()


class HttpSignInTests(UsersRouterTestCase):
    """JSON-RPC's HTTP Basic goes through the same authenticators; repeated checks are cheap."""

    def resource(self):
        import functools
        from broker.jsonrpc.resource import JsonRpcResource
        return JsonRpcResource(None, functools.partial(self.router.authenticate, "realm1"),
                               "realm1", self.clock)

    def test_basic_credentials_parsing(self):
        """Authorization: Basic gives user and password; malformed values give None; repr hides the password."""
        from base64 import b64encode
        from broker.http_guard import BasicCredentials, basic_credentials
        header = "Basic " + b64encode(b"alice:pa:ss").decode()
        self.assertEqual(basic_credentials(header), BasicCredentials("alice", "pa:ss"))
        self.assertNotIn("pa:ss", repr(basic_credentials(header)))
        for bad in ("Basic !!!", "Basic " + b64encode(b"nocolon").decode(), "token abc"):
            self.assertIsNone(basic_credentials(bad))

    def test_basic_is_the_user(self):
        """Basic with a user's password is that user with their role; the host token never gives the host role."""
        from broker.http_guard import BasicCredentials
        jsonrpc = self.resource()
        principal = jsonrpc.principal_for(BasicCredentials("tess", PASSWORDS["tess"]), "tcp4:1.2.3.4:1")
        self.assertEqual((principal.authid, principal.authrole), ("tess", "teacher"))
        self.assertIsNone(jsonrpc.principal_for(BasicCredentials("tess", "wrong"), "tcp4:1.2.3.4:1"))
        self.assertIsNone(jsonrpc.principal_for(BasicCredentials("webkernel_host", "host secret"),
                                                "tcp4:1.2.3.4:1"))
        self.assertIsNone(jsonrpc.principal_for("any token", "tcp4:1.2.3.4:1"))

    def test_verified_passwords_skip_the_derivation(self):
        """A password checked once is not derived again; a changed password is derived afresh."""
        derivations = []
        real = store.derive_key
        self.patch(store, "derive_key", lambda *a: derivations.append(a) or real(*a))
        alice = self.users.get("alice")
        self.assertTrue(self.users.password_ok(alice, PASSWORDS["alice"]))
        self.assertTrue(self.users.password_ok(alice, PASSWORDS["alice"]))
        self.assertEqual(len(derivations), 1)
        changed = alice.with_password("new alice password")
        self.assertFalse(self.users.password_ok(changed, PASSWORDS["alice"]))
        self.assertFalse(self.users.password_ok(alice, None))
