"""The classroom rules on Crossbar.io: ``--crossbar-authorizer --users`` as its dynamic
authorizer and its dynamic authenticator (users sign in with the users file).

Skipped, with the reason, where Crossbar.io is not installed.
"""

import os
import tempfile

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker import errors
from broker.classroom.authorizer import ClassroomAuthorizer
from broker.classroom.crossbar import crossbar_decision
from broker.classroom.owners import KernelOwners
from broker.users.authenticators import REFUSED
from broker.classroom.crossbar import CrossbarAuthorizerService
from broker.client import NotAuthorized, connect_async
from broker.users import store
from broker.users.crossbar import KILL_BY_AUTHID, crossbar_authenticate
from broker.users.directory import UserDirectory
from tests import crossbar
from tests.test_classroom import who
from tests.twisted_wamp import JoinRefused, joined, leave

CALL = 60
KERNEL = "a" * 32
PEER = {"transport": {"peer": "tcp4:127.0.0.1:40312"}}


class DecisionTests(SynchronousTestCase):
    """What Crossbar.io is told it may cache: it keys a decision on (realm, authrole, uri, action) only."""

    def setUp(self):
        owners = KernelOwners()
        owners.event("started", {"id": KERNEL, "owner": "alice"})
        self.rules = ClassroomAuthorizer(owners)

    def decide(self, user, role, uri, action="call", match="exact"):
        return crossbar_decision(self.rules, who(user, role), uri, action, {"match": match})

    def test_a_students_own_kernel_is_never_cached(self):
        """Alice may run her kernel; cached by role, every student could."""
        self.assertEqual(self.decide("alice", "student", f"webkernel.kernel.{KERNEL}.execute"),
                         {"allow": True, "disclose": True, "cache": False})
        self.assertFalse(self.decide("bob", "student", f"webkernel.kernel.{KERNEL}.execute")["allow"])

    def test_role_wide_decisions_are_cached_for_students_too(self):
        """The page's heartbeat (a refused meta call) and notebook listing are the same for every student: cached."""
        self.assertEqual(self.decide("alice", "student", "wamp.session.count"),
                         {"allow": False, "disclose": False, "cache": True})
        self.assertEqual(self.decide("alice", "student", "webkernel.notebooks.list"),
                         {"allow": True, "disclose": True, "cache": True})
        self.assertTrue(self.decide("tess", "teacher", f"webkernel.kernel.{KERNEL}.execute")["cache"])

    def test_a_decision_that_depends_on_the_match_is_not_cached(self):
        """An observer's exact subscription to "w" is allowed; cached, it would allow "w" by prefix (all of wamp.)."""
        exact = self.decide("olga", "observer", "w", "subscribe", "exact")
        self.assertEqual(exact, {"allow": True, "disclose": True, "cache": False})
        self.assertFalse(self.decide("olga", "observer", "w", "subscribe", "prefix")["allow"])
        self.assertTrue(self.decide("olga", "observer", "webkernel.kernels.events", "subscribe")["cache"])


class AuthenticateTests(SynchronousTestCase):
    """webkernel.authenticate, as Crossbar.io calls it, on a users file."""

    def setUp(self):
        path = crossbar.write_users_file(os.path.join(tempfile.mkdtemp(), "users.json"))
        self.directory = UserDirectory(path, Clock())

    def authenticate(self, authid, ticket):
        return crossbar_authenticate(self.directory, crossbar.REALM, authid,
                                     {**PEER, "ticket": ticket})

    def test_a_user_gets_the_role_of_the_users_file(self):
        """The right password gives Crossbar.io the user's name and their role in the file."""
        self.assertEqual(self.authenticate("alice", "alice-pass"),
                         {"authid": "alice", "role": "student"})
        self.assertEqual(self.authenticate("tess", "tess-pass"),
                         {"authid": "tess", "role": "teacher"})

    def test_unknown_user_and_wrong_password_are_refused_alike(self):
        """An unknown name, a wrong password and another user's password: one URI, one message."""
        refusals = [self.assertRaises(ApplicationError, self.authenticate, authid, ticket)
                    for authid, ticket in (("alice", "bob-pass"), ("mallory", "alice-pass"),
                                           ("alice", None), (None, "x"))]
        self.assertEqual({(e.error, e.args) for e in refusals},
                         {(errors.NOT_AUTHORIZED, (REFUSED,))})


class CallRecorder:
    """A joined session's ``call``: records each call, answers with *answer* (a callable)."""

    def __init__(self, answer=lambda *args, **kwargs: defer.succeed([1])):
        self.calls, self.answer = [], answer

    def call(self, procedure, *args, **kwargs):
        self.calls.append((procedure, args, kwargs))
        return self.answer(procedure, *args, **kwargs)


class SignOutTests(SynchronousTestCase):
    """Users removed or changed in the file are signed out through Crossbar.io's meta API."""

    def service(self):
        return CrossbarAuthorizerService("ws://127.0.0.1:1/ws", crossbar.REALM, "t", Clock())

    def test_changed_users_are_killed_by_authid_with_the_user_changed_reason(self):
        """Each name is one wamp.session.kill_by_authid, with the close reason webkernel's own router sends."""
        service, session = self.service(), CallRecorder()
        service.joined(session)
        service.sign_out(["bob", "alice"])
        self.assertEqual(session.calls, [
            (KILL_BY_AUTHID, (name,), {"reason": errors.USER_CHANGED,
                                       "message": errors.USER_CHANGED_MESSAGE})
            for name in ("alice", "bob")])
        self.assertEqual(service.to_sign_out, set())

    def test_names_wait_for_the_session_to_join(self):
        """A change noticed while not joined to Crossbar.io is acted on as soon as the session joins."""
        service, session = self.service(), CallRecorder()
        service.sign_out(["alice"])
        service.joined(session)
        self.assertEqual([args for _, args, _ in session.calls], [("alice",)])

    def test_a_refused_call_is_logged_and_a_lost_one_tried_again(self):
        """Refused (no permission): logged, not retried; the connection lost mid-call: kept for the next join."""
        refused = CallRecorder(lambda *a, **k: defer.fail(
            ApplicationError(errors.NOT_AUTHORIZED, "no")))
        service = self.service()
        service.joined(refused)
        service.sign_out(["alice"])
        self.assertEqual(len(self.flushLoggedErrors()), 0)
        self.assertEqual(service.to_sign_out, set())
        lost = CallRecorder(lambda *a, **k: defer.fail(ConnectionError("lost")))
        service.joined(lost)
        service.sign_out(["bob"])
        self.assertEqual(service.to_sign_out, {"bob"})
        service.left(lost)
        service.joined(refused)
        self.assertEqual([args for _, args, _ in refused.calls], [("alice",), ("bob",)])


@pytest.mark.integration
@pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))
class CrossbarClassroomTests(TestCase):
    """Users under Crossbar.io, signed in by webkernel.authenticate and judged by webkernel.authorize."""

    timeout = 180

    def start_classroom(self):
        work = tempfile.mkdtemp(prefix="webkernel-cb-class-")
        node = crossbar.CrossbarNode(work, classroom=True).start()
        self.addCleanup(node.stop)
        users = crossbar.write_users_file(os.path.join(work, "users.json"))
        authorizer = crossbar.classroom_authorizer(node, users)
        self.addCleanup(authorizer.stop)
        node.users_file = users
        return node

    @defer.inlineCallbacks
    def test_users_sign_in_to_crossbar_with_the_users_file(self):
        """A student and a teacher get their file's roles; a wrong password and an unknown user are refused alike."""
        node = self.start_classroom()
        alice = yield joined(node, realm=crossbar.REALM, ticket="alice-pass", authid="alice")
        tess = yield joined(node, realm=crossbar.REALM, ticket="tess-pass", authid="tess")
        self.addCleanup(leave, alice, tess)
        self.assertEqual((alice.details.authid, alice.details.authrole), ("alice", "student"))
        self.assertEqual((tess.details.authid, tess.details.authrole), ("tess", "teacher"))
        refusals = []
        for authid, ticket in (("alice", "wrong-password"), ("mallory", "alice-pass")):
            refusals.append((yield self.assertFailure(
                joined(node, realm=crossbar.REALM, ticket=ticket, authid=authid), JoinRefused)))
        self.assertEqual({(r.reason, r.message) for r in refusals},
                         {(errors.NOT_AUTHORIZED, REFUSED)})

    @defer.inlineCallbacks
    def test_a_student_cannot_use_another_students_kernel(self):
        """Alice runs her kernel; Bob is refused it and does not list it, even right after Alice was allowed."""
        node = self.start_classroom()
        host = crossbar.kernel_host(node, tempfile.mkdtemp(prefix="webkernel-host-"), "--classroom")
        self.addCleanup(host.stop)
        alice = yield joined(node, realm=crossbar.REALM, ticket="alice-pass", authid="alice")
        bob = yield joined(node, realm=crossbar.REALM, ticket="bob-pass", authid="bob")
        self.addCleanup(leave, alice, bob)

        model = yield alice.call("webkernel.kernels.start").addTimeout(CALL, reactor)
        self.assertEqual(model["owner"], "alice")
        cell = f"webkernel.kernel.{model['id']}.eval_cell"
        for _ in range(2):
            self.assertEqual((yield alice.call(cell, "6*7").addTimeout(CALL, reactor)), "42")
            refused = yield self.assertFailure(bob.call(cell, "6*7").addTimeout(CALL, reactor),
                                               ApplicationError)
            self.assertEqual(refused.error, errors.NOT_AUTHORIZED)
        self.assertEqual((yield bob.call("webkernel.kernels.list")), [])
        self.assertEqual([m["id"] for m in (yield alice.call("webkernel.kernels.list"))],
                         [model["id"]])

    @defer.inlineCallbacks
    def test_an_allowed_exact_subscription_does_not_allow_the_prefix(self):
        """Crossbar.io caches by URI, not match: Olga (observer) may subscribe to "w" exactly, and is still refused "w" by prefix (every wamp. meta event)."""
        node = self.start_classroom()
        olga = yield joined(node, realm=crossbar.REALM, ticket="olga-pass", authid="olga")
        self.addCleanup(leave, olga)
        self.assertEqual(olga.details.authrole, "observer")
        yield olga.subscribe(lambda *args, **kwargs: None, "w").addTimeout(CALL, reactor)
        refused = yield self.assertFailure(
            olga.subscribe(lambda *args, **kwargs: None, "w",
                           options=SubscribeOptions(match="prefix")).addTimeout(CALL, reactor),
            ApplicationError)
        self.assertEqual(refused.error, errors.NOT_AUTHORIZED)

    @defer.inlineCallbacks
    def test_broker_client_signs_in_to_crossbar_with_a_password(self):
        """connect_async(user=, password=) signs in by ticket where Crossbar.io asks for one, and runs Alice's code; a wrong password is NotAuthorized."""
        node = self.start_classroom()
        host = crossbar.kernel_host(node, tempfile.mkdtemp(prefix="webkernel-host-"), "--classroom")
        self.addCleanup(host.stop)
        client = yield connect_async(node.ws_url, realm=crossbar.REALM, user="alice",
                                     password="alice-pass", reconnect=False, timeout=CALL)
        self.addCleanup(client.close)
        self.assertEqual(client.authid, "alice")
        kernel = yield client.start_kernel()
        self.assertEqual(kernel.model["owner"], "alice")
        self.assertEqual((yield kernel.eval_cell("6*7")), "42")
        yield kernel.shutdown()
        yield self.assertFailure(connect_async(node.ws_url, realm=crossbar.REALM, user="alice",
                                               password="wrong-password", reconnect=False,
                                               timeout=CALL), NotAuthorized)

    @defer.inlineCallbacks
    def test_a_changed_user_is_signed_out_of_crossbar(self):
        """A new password in the users file ends Alice's sessions (webkernel.close.user_changed); Bob stays."""
        node = self.start_classroom()
        alice = yield joined(node, realm=crossbar.REALM, ticket="alice-pass", authid="alice")
        bob = yield joined(node, realm=crossbar.REALM, ticket="bob-pass", authid="bob")
        self.addCleanup(leave, bob)
        users = store.load(node.users_file)
        users["alice"] = store.User.create("alice", "student", "new-pass", iterations=10)
        store.save(node.users_file, users)
        # the authorizer re-reads the file every 2 s; a bounded wait for the GOODBYE
        details = yield alice.left.addTimeout(CALL, reactor)
        self.assertEqual((details.reason, details.message),
                         (errors.USER_CHANGED, errors.USER_CHANGED_MESSAGE))
        self.assertTrue(bob.is_attached())
        yield self.assertFailure(
            joined(node, realm=crossbar.REALM, ticket="alice-pass", authid="alice"), JoinRefused)
