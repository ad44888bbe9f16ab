"""Attacks on a real ``twistd webkernel --users`` with real kernels, from raw Autobahn clients.

Student alice, student bob, teacher tess, observer olga sign in with
WAMP-CRA (or ticket) over real WebSockets. Bob tries alice's kernel by URI,
prefix and wildcard; the observer tries to change things; the teacher
watches alice's output live; a student starts ten kernels at once; a
guesser is slowed down; a removed user's session ends. Waits are bounded.
"""

import os
import shutil
import tempfile

import pytest

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.auth import compute_wcs, derive_key
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import JsonSerializer
from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase

from jsonrpclib import ServerProxy
from jsonrpclib.jsonrpc import ProtocolError

from broker.client import NotAuthorized, connect_async
from broker.users import command, store
from tests.service import ServiceProcess

TIMEOUT = 60
PASSWORDS = {"alice": "alice password", "bob": "bob password", "tess": "tess password",
             "olga": "olga password", "gus": "gus password", "remy": "remy password",
             "carl": "carl password", "jill": "jill password", "jack": "jack password"}
ROLES = {"alice": "student", "bob": "student", "tess": "teacher", "olga": "observer",
         "gus": "student", "remy": "student", "carl": "student", "jill": "student",
         "jack": "student"}
NOT_AUTHORIZED = "wamp.error.not_authorized"


class UserSession(ApplicationSession):
    """Signs in as a user: WAMP-CRA (deriving the key from the salt) or ticket."""

    def __init__(self, config, user, password, method):
        super().__init__(config)
        self.user, self.password, self.method = user, password, method
        self.joined = defer.Deferred()
        self.left = defer.Deferred()

    def onConnect(self):
        self.join(self.config.realm, authmethods=[self.method], authid=self.user)

    def onChallenge(self, challenge):
        if challenge.method == "ticket":
            return self.password
        extra = challenge.extra
        key = derive_key(self.password, extra["salt"], extra["iterations"], extra["keylen"])
        return compute_wcs(key, extra["challenge"]).decode("ascii")

    def onJoin(self, details):
        self.joined.callback(self)

    def onLeave(self, details):
        if not self.joined.called:
            self.joined.errback(ApplicationError(details.reason, details.message))
        if not self.left.called:
            self.left.callback(details)
        self.disconnect()


@pytest.mark.integration
class ServiceTestCase(TestCase):
    """A real service in multi-user mode, and signing in to it."""

    timeout = 240
    #: more options of the service (a subclass's)
    service_options = ()

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="webkernel-classroom-")
        cls.users_file = os.path.join(cls.directory, "users.json")
        store.save(cls.users_file, {n: store.User.create(n, ROLES[n], p)
                                    for n, p in PASSWORDS.items()})
        # the WAMP layer's attacks: kernels share the service's account here
        # (test_kernel_isolation.py attacks the OS isolation)
        cls.service = ServiceProcess("--users", cls.users_file, "--kernel-dir",
                                     os.path.join(cls.directory, "kernels"),
                                     "--unsafe-shared-account", "--home-root",
                                     os.path.join(cls.directory, "homes"),
                                     "--max-kernels", "8", "--max-kernels-per-user", "2",
                                     *cls.service_options)

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()
        shutil.rmtree(cls.directory, ignore_errors=True)

    @defer.inlineCallbacks
    def sign_in(self, user, password=None, method="wampcra"):
        """A joined session as *user* (bounded wait); left again at cleanup."""
        created = defer.Deferred()
        password = PASSWORDS.get(user) if password is None else password

        def make():
            session = UserSession(types.ComponentConfig(realm="webkernel"), user, password, method)
            created.callback(session)
            return session
        factory = WampWebSocketClientFactory(make, url=self.service.ws_url,
                                             serializers=[JsonSerializer()])
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.service.port,
                                                timeout=TIMEOUT)
        yield endpoint.connect(factory)
        session = yield created.addTimeout(TIMEOUT, reactor)
        self.addCleanup(lambda: session.leave() if session.is_attached() else None)
        yield session.joined.addTimeout(TIMEOUT, reactor)
        return session

    @defer.inlineCallbacks
    def refused(self, action, error_uris=(NOT_AUTHORIZED,)):
        """*action()*'s Deferred fails with an error of *error_uris* (not_authorized)."""
        try:
            yield action()
        except ApplicationError as e:
            self.assertIn(e.error, error_uris, e)
        else:
            self.fail("allowed")

    @defer.inlineCallbacks
    def start(self, session):
        model = yield session.call("webkernel.kernels.start")
        tess = self.teacher

        @defer.inlineCallbacks
        def shut_down():
            try:
                yield tess.call(f"webkernel.kernel.{model['id']}.shutdown")
            except ApplicationError:
                pass
        self.addCleanup(shut_down)
        return model

    @defer.inlineCallbacks
    def setUp(self):
        self.teacher = yield self.sign_in("tess")



@pytest.mark.integration
class ClassroomServiceTests(ServiceTestCase):
    """Four users against a real service in multi-user mode."""

    @defer.inlineCallbacks
    def test_other_student_cannot_touch_a_kernel(self):
        """bob can neither list, call, watch, register nor publish on alice's kernel, by URI, prefix or wildcard."""
        alice = yield self.sign_in("alice")
        bob = yield self.sign_in("bob", method="ticket")
        kernel = (yield self.start(alice))["id"]
        listed = yield bob.call("webkernel.kernels.list")
        self.assertNotIn(kernel, [m["id"] for m in listed])
        self.assertIn(kernel, [m["id"] for m in (yield alice.call("webkernel.kernels.list"))])
        for name in ("execute", "eval_cell", "outputs", "interrupt", "restart", "shutdown"):
            yield self.refused(lambda: bob.call(f"webkernel.kernel.{kernel}.{name}", "1"))
        for topic, match in [(f"webkernel.kernel.{kernel}.iopub.stream", "exact"),
                             (f"webkernel.kernel.{kernel}", "prefix"),
                             ("webkernel.kernel.", "prefix"), ("webkernel", "prefix"),
                             ("webkernel.kernel..iopub.stream", "wildcard"),
                             (f"..{kernel}.iopub.stream", "wildcard")]:
            yield self.refused(lambda: bob.subscribe(
                lambda *a, **k: None, topic, options=types.SubscribeOptions(match=match)))
        for uri, match in [(f"webkernel.kernel.{kernel}.execute", "exact"),
                           ("webkernel.kernel.", "prefix"),
                           ("webkernel.kernel..execute", "wildcard")]:
            yield self.refused(lambda: bob.register(
                lambda *a, **k: None, uri, options=types.RegisterOptions(match=match)))
        yield self.refused(lambda: bob.publish(
            f"webkernel.kernel.{kernel}.iopub.stream", name="stdout", text="fake",
            options=types.PublishOptions(acknowledge=True)))
        for meta in ("wamp.session.list", "wamp.subscription.list", "wamp.registration.list"):
            yield self.refused(lambda: bob.call(meta))

    @defer.inlineCallbacks
    def test_teacher_watches_output_live(self):
        """The teacher's prefix subscription gets alice's stream output while her cell runs."""
        alice = yield self.sign_in("alice")
        kernel = (yield self.start(alice))["id"]
        seen = defer.Deferred()

        def on_output(**output):
            if output.get("msg_type") == "stream" and "from alice" in output["content"]["text"]:
                if not seen.called:
                    seen.callback(output)
        yield self.teacher.subscribe(on_output, f"webkernel.kernel.{kernel}.iopub",
                                     options=types.SubscribeOptions(match="prefix"))
        alice.call(f"webkernel.kernel.{kernel}.execute", "print('from alice')")
        output = yield seen.addTimeout(TIMEOUT, reactor)
        self.assertEqual(output["caller"]["authid"], "alice")

    @defer.inlineCallbacks
    def test_share_watch_then_revoke(self):
        """alice shares her kernel watch-only with bob: he sees her output live but cannot run code; revoked, he cannot watch again."""
        alice = yield self.sign_in("alice")
        bob = yield self.sign_in("bob")
        kernel = (yield self.start(alice))["id"]
        yield alice.call(f"webkernel.kernel.{kernel}.share", user="bob", access="watch")
        seen = defer.Deferred()

        def on_output(**output):
            if output.get("msg_type") == "stream" and "shared" in output["content"]["text"]:
                if not seen.called:
                    seen.callback(output)
        yield bob.subscribe(on_output, f"webkernel.kernel.{kernel}.iopub",
                            options=types.SubscribeOptions(match="prefix"))
        yield self.refused(lambda: bob.call(f"webkernel.kernel.{kernel}.execute", "1"))
        alice.call(f"webkernel.kernel.{kernel}.execute", "print('shared')")
        yield seen.addTimeout(TIMEOUT, reactor)
        yield alice.call(f"webkernel.kernel.{kernel}.unshare", user="bob")
        yield self.refused(lambda: bob.subscribe(lambda **k: None,
                                                 f"webkernel.kernel.{kernel}.iopub.stream"))
        self.assertEqual((yield bob.call("webkernel.kernels.list")), [])

    @defer.inlineCallbacks
    def test_observer_changes_nothing(self):
        """The observer lists and reads alice's kernel but cannot start, execute, input, complete, interrupt, restart or shut down."""
        alice = yield self.sign_in("alice")
        olga = yield self.sign_in("olga")
        kernel = (yield self.start(alice))["id"]
        self.assertIn(kernel, [m["id"] for m in (yield olga.call("webkernel.kernels.list"))])
        yield self.refused(lambda: olga.call("webkernel.kernels.start"))
        for name in ("execute", "eval_cell", "input", "complete", "interrupt", "restart",
                     "shutdown"):
            yield self.refused(lambda: olga.call(f"webkernel.kernel.{kernel}.{name}", "1"))
        yield self.refused(lambda: olga.publish(
            "com.example.news", options=types.PublishOptions(acknowledge=True)))

    @defer.inlineCallbacks
    def test_quota_under_parallel_starts(self):
        """Ten starts at once by one student: two kernels, eight kernel_limit errors."""
        gus = yield self.sign_in("gus")
        starts = [gus.call("webkernel.kernels.start") for _ in range(10)]
        outcomes = yield defer.DeferredList(starts, consumeErrors=True).addTimeout(TIMEOUT, reactor)
        started = [value for ok, value in outcomes if ok]
        for model in started:
            self.addCleanup(lambda kernel=model["id"]: self.teacher.call(
                f"webkernel.kernel.{kernel}.shutdown"))
        errors = [value.value.error for ok, value in outcomes if not ok]
        self.assertEqual(len(started), 2)
        self.assertEqual(errors, ["webkernel.error.kernel_limit"] * 8)

    @defer.inlineCallbacks
    def test_guessing_is_slowed_down(self):
        """After repeated wrong passwords even the right one is refused for a while, with the same error."""
        for _ in range(6):
            e = yield self.assertFailure(self.sign_in("remy", "wrong password", "ticket"),
                                         ApplicationError)
            self.assertEqual(e.error, NOT_AUTHORIZED)
        e = yield self.assertFailure(self.sign_in("remy"), ApplicationError)
        self.assertEqual(e.error, NOT_AUTHORIZED)

    @defer.inlineCallbacks
    def test_unknown_user_and_service_token_are_refused(self):
        """A name that is no user, and the ticket without a user, are refused the same way."""
        for user, method in (("nobody", "wampcra"), ("nobody", "ticket")):
            e = yield self.assertFailure(self.sign_in(user, "some password"), ApplicationError)
            self.assertEqual(e.error, NOT_AUTHORIZED)

    @defer.inlineCallbacks
    def test_removed_user_is_signed_out(self):
        """Removing a user with webkernel-users ends their open session without a restart."""
        command.run([self.users_file, "add", "temp", "--role", "student", "--password",
                     "temp password"])
        temp = yield self.sign_in("temp", "temp password")
        command.run([self.users_file, "remove", "temp"])
        details = yield temp.left.addTimeout(TIMEOUT, reactor)
        self.assertEqual(details.reason, "webkernel.close.user_changed")


@pytest.mark.integration
class ClassroomClientTests(ServiceTestCase):
    """broker.client and stock JSON-RPC clients sign in as users."""

    @defer.inlineCallbacks
    def test_broker_client_signs_in_with_wampcra(self):
        """connect_async(user=, password=) joins as the user, whose kernel it then owns; a wrong password is NotAuthorized."""
        url = f"http://127.0.0.1:{self.service.port}/"
        client = yield connect_async(url, user="carl", password=PASSWORDS["carl"],
                                     reconnect=False, timeout=TIMEOUT)
        self.addCleanup(client.close)
        self.assertEqual(client.authid, "carl")
        kernel = yield client.start_kernel()
        self.addCleanup(lambda: self.teacher.call(f"webkernel.kernel.{kernel.id}.shutdown"))
        self.assertEqual(kernel.model["owner"], "carl")
        self.assertEqual((yield kernel.eval_cell("2+3")), "5")
        yield self.assertFailure(connect_async(url, user="carl", password="wrong password",
                                               reconnect=False, timeout=TIMEOUT), NotAuthorized)

    def test_jsonrpc_basic_each_user_their_own_kernel(self):
        """Stock jsonrpclib with http://NAME:PASSWORD@host/jsonrpc: each user has their own default kernel; a wrong password is 401."""
        def proxy(user, password=None):
            password = PASSWORDS[user] if password is None else password
            return ServerProxy(f"http://{user}:{password}@127.0.0.1:{self.service.port}/jsonrpc")
        jill, jack = proxy("jill"), proxy("jack")
        jill.eval_cell("x = 'jill'")
        jack.eval_cell("x = 'jack'")
        self.assertEqual(jill.eval_cell("x"), "'jill'")
        jill_kernels = {m["id"] for m in jill.kernels()}
        self.assertEqual([m["owner"] for m in jill.kernels()], ["jill"])
        self.assertFalse(jill_kernels & {m["id"] for m in jack.kernels()})
        with self.assertRaises(ProtocolError) as refused:
            proxy("jill", "wrong password").eval_cell("1")
        self.assertIn("401", str(refused.exception))
