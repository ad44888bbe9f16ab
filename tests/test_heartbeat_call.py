"""The notebook page's heartbeat call is answered for every role that can use the page.

The page (web/src/heartbeat.js) calls ``wamp.session.count`` when it has
heard nothing for a while and counts any answer, a result or a WAMP error,
as proof that the link to the router is alive. These tests check that the
router itself answers it at once, for each role: on webkernel's own router
(anonymous, token, and the ``--users`` roles under the classroom
authorizer) in memory, and on Crossbar.io with the roles of tests/crossbar.py
(which also answers the Python client's WebSocket pings).
"""

import broker  # noqa: F401  (first: selects Twisted for txaio)
import os
import re
import shutil
import tempfile

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker import errors
from broker.auth import Principal
from broker.classroom import roles
from broker.classroom.authorizer import ClassroomAuthorizer
from broker.classroom.crossbar import CrossbarAuthorizer
from broker.classroom.owners import KernelOwners
from broker.client import connect_async
from broker.testing import MemoryRouter
from tests import crossbar
from tests.twisted_wamp import joined, leave

HEARTBEAT_JS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "web", "src", "heartbeat.js")
BOUND = 30  # seconds: a bound on each wait against a real Crossbar.io


def heartbeat_procedure():
    """The procedure the page calls, read from its source (so the two cannot drift apart)."""
    with open(HEARTBEAT_JS, encoding="utf-8") as f:
        return re.search(r"HEARTBEAT_PROCEDURE = '([^']+)'", f.read()).group(1)


class HeartbeatProcedureTests(SynchronousTestCase):
    """The page's heartbeat is a procedure the router answers by itself."""

    def test_the_page_calls_the_session_count(self):
        """web/src/heartbeat.js calls wamp.session.count, the meta procedure these tests check."""
        self.assertEqual(heartbeat_procedure(), "wamp.session.count")


class OwnRouterTests(SynchronousTestCase):
    """webkernel's router answers the heartbeat call at once for every role of the page."""

    def answer(self, principal, authorizer=None):
        memory = MemoryRouter(authorizer=authorizer)
        client = memory.joined(principal)
        request = client.request_id()
        client.send(message.Call(request, heartbeat_procedure()))
        memory.clock.advance(0)
        [answer] = client.take()
        self.assertEqual(answer.request, request)
        return answer

    def test_anonymous_and_token_sessions_get_the_count(self):
        """Single-user mode: an anonymous (--anonymous) and a token session both get a RESULT."""
        for principal in (Principal("anonymous-1", "anonymous", "anonymous"),
                          Principal("user-1", "user", "ticket")):
            self.assertIsInstance(self.answer(principal), message.Result)

    def test_users_mode_roles_all_get_an_answer(self):
        """--users: a teacher gets the count; a student and an observer (no meta API) an immediate not_authorized."""
        expected = {roles.TEACHER: message.Result, roles.STUDENT: message.Error,
                    roles.OBSERVER: message.Error}
        for role, kind in expected.items():
            answer = self.answer(Principal("alice", role, "wampcra"), ClassroomAuthorizer(KernelOwners()))
            self.assertIsInstance(answer, kind, role)
            if kind is message.Error:
                self.assertEqual(answer.error, errors.NOT_AUTHORIZED)


class CrossbarClassroomTests(SynchronousTestCase):
    """On a classroom Crossbar.io, webkernel.authorize decides the heartbeat call of every users role."""

    def test_every_users_role_gets_a_decision(self):
        """A teacher is allowed the count; a student and an observer refused (an answer all the same)."""
        authorizer = CrossbarAuthorizer()
        decisions = {role: authorizer.authorize({"authid": "alice", "authrole": role, "session": 1},
                                                heartbeat_procedure(), "call")["allow"]
                     for role in (roles.TEACHER, roles.STUDENT, roles.OBSERVER)}
        self.assertEqual(decisions, {roles.TEACHER: True, roles.STUDENT: False, roles.OBSERVER: False})


@pytest.mark.integration
@pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))
class CrossbarTests(TestCase):
    """Crossbar.io with webkernel's roles answers the heartbeat call and the client's pings."""

    timeout = 120

    def setUp(self):
        work = tempfile.mkdtemp(prefix="webkernel-crossbar-")
        self.addCleanup(shutil.rmtree, work, True)
        self.node = crossbar.CrossbarNode(work).start()
        self.addCleanup(self.node.stop)

    @defer.inlineCallbacks
    def test_anonymous_client_gets_an_answer(self):
        """The client role (anonymous, no wamp.* permission) is refused at once: an answer, as the page needs."""
        session = yield joined(self.node, realm=crossbar.REALM)
        self.addCleanup(lambda: leave(session) if session.is_attached() else None)
        try:
            yield session.call(heartbeat_procedure()).addTimeout(BOUND, reactor)
        except ApplicationError as e:
            self.assertEqual(e.error, errors.NOT_AUTHORIZED)

    @defer.inlineCallbacks
    def test_crossbar_answers_the_python_clients_pings(self):
        """broker.client's WebSocket pings to Crossbar.io get pongs, and the connection stays."""
        client = yield connect_async(self.node.ws_url, realm=crossbar.REALM, timeout=BOUND,
                                     ping_interval=0.1, ping_timeout=BOUND)
        self.addCleanup(client.close)
        protocol = client.session._transport
        pongs = defer.Deferred()
        seen = []

        def on_pong(payload, original=protocol.onPong):
            original(payload)
            seen.append(payload)
            if len(seen) == 3 and not pongs.called:
                pongs.callback(None)
        protocol.onPong = on_pong
        yield pongs.addTimeout(BOUND, reactor)
        self.assertTrue(client.session.is_attached())
