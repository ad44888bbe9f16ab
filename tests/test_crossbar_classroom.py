"""The classroom rules on Crossbar.io: ``--crossbar-authorizer`` as its dynamic authorizer.

Skipped, with the reason, where Crossbar.io is not installed.
"""

import tempfile

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker import errors
from broker.classroom.crossbar import crossbar_decision
from tests import crossbar
from tests.twisted_wamp import joined, leave

CALL = 60


class DecisionTests(SynchronousTestCase):
    """What Crossbar.io is told it may cache."""

    def test_student_decisions_are_never_cacheable(self):
        """Crossbar.io caches by role, not user: a student's allow must not become every student's."""
        allow = {"allow": True, "disclose": True, "cache": True}
        self.assertEqual(crossbar_decision(allow, "student"),
                         {"allow": True, "disclose": True, "cache": False})
        self.assertTrue(crossbar_decision(allow, "teacher")["cache"])


@pytest.mark.integration
@pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))
class CrossbarClassroomTests(TestCase):
    """Students under Crossbar.io, judged by webkernel.authorize."""

    timeout = 180

    @defer.inlineCallbacks
    def test_a_student_cannot_use_another_students_kernel(self):
        """Alice runs her kernel; Bob is refused it and does not list it, even right after Alice was allowed."""
        node = crossbar.CrossbarNode(tempfile.mkdtemp(prefix="webkernel-cb-class-"),
                                     classroom=True).start()
        self.addCleanup(node.stop)
        authorizer = crossbar.classroom_authorizer(node)
        self.addCleanup(authorizer.stop)
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
