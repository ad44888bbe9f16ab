"""The classroom rules on Crossbar.io: ``--crossbar-authorizer --users`` as its dynamic
authorizer and its dynamic authenticator (users sign in with the users file).

Skipped, with the reason, where Crossbar.io is not installed.
"""

import os
import tempfile

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker import errors
from broker.classroom.crossbar import crossbar_decision
from broker.users.authenticators import REFUSED
from broker.users.crossbar import crossbar_authenticate
from broker.users.directory import UserDirectory
from tests import crossbar
from tests.twisted_wamp import JoinRefused, joined, leave

CALL = 60
PEER = {"transport": {"peer": "tcp4:127.0.0.1:40312"}}


class DecisionTests(SynchronousTestCase):
    """What Crossbar.io is told it may cache."""

    def test_student_decisions_are_never_cacheable(self):
        """Crossbar.io caches by role, not user: a student's allow must not become every student's."""
        allow = {"allow": True, "disclose": True, "cache": True}
        self.assertEqual(crossbar_decision(allow, "student"),
                         {"allow": True, "disclose": True, "cache": False})
        self.assertTrue(crossbar_decision(allow, "teacher")["cache"])


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
