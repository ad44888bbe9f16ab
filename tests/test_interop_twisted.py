"""Unmodified Autobahn|Python applications on Twisted against ``twistd webkernel``.

The same library the service is built on, used as a client the way an
application would (``ApplicationSession`` over a real loopback WebSocket and
RawSocket), run under trial's reactor with bounded waits.
"""

import pytest
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.service import ServiceProcess
from tests.twisted_wamp import TIMEOUT, joined

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

class TwistedClientTests(TestCase):
    """RPC with progress, cancel and pub/sub from Twisted applications."""

    timeout = 60

    @classmethod
    def setUpClass(cls):
        cls.service = ServiceProcess("--anonymous", "--realm", "realm1")

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    @defer.inlineCallbacks
    def test_progressive_call_over_both_transports(self):
        """A Twisted callee streams progress to a Twisted caller across WebSocket and RawSocket."""
        callee = yield joined(self.service, "websocket")
        caller = yield joined(self.service, "rawsocket")

        def steps(n, details=None):
            for i in range(n):
                details.progress(i * i)
            return "end"
        yield callee.register(steps, "com.steps", options=RegisterOptions(details_arg="details"))
        seen = []
        result = yield caller.call("com.steps", 4, options=CallOptions(on_progress=seen.append))
        self.assertEqual((seen, result), ([0, 1, 4, 9], "end"))
        yield self.leave(callee, caller)

    @defer.inlineCallbacks
    def test_cancel(self):
        """Cancelling the caller's Deferred cancels the callee's Deferred."""
        callee = yield joined(self.service)
        caller = yield joined(self.service)
        running, interrupted = defer.Deferred(), defer.Deferred()

        def slow():
            d = defer.Deferred(lambda _: interrupted.callback(True))
            running.callback(None)
            return d
        yield callee.register(slow, "com.slow")
        call = caller.call("com.slow")
        yield running.addTimeout(TIMEOUT, reactor)
        call.cancel()
        outcome = yield call.addCallbacks(lambda r: ("result", r), lambda f: ("failed", f))
        self.assertEqual(outcome[0], "failed")
        self.assertTrue(outcome[1].check(defer.CancelledError, ApplicationError))
        self.assertTrue((yield interrupted.addTimeout(TIMEOUT, reactor)))
        yield self.leave(callee, caller)

    @defer.inlineCallbacks
    def test_pubsub(self):
        """A Twisted subscriber receives a Twisted publisher's event with kwargs."""
        subscriber = yield joined(self.service, "rawsocket")
        publisher = yield joined(self.service)
        received = defer.Deferred()
        yield subscriber.subscribe(lambda **kw: received.callback(kw), "com.twisted.news")
        yield publisher.publish("com.twisted.news", headline="hi",
                                options=types.PublishOptions(acknowledge=True))
        self.assertEqual((yield received.addTimeout(TIMEOUT, reactor)), {"headline": "hi"})
        yield self.leave(subscriber, publisher)

    @defer.inlineCallbacks
    def leave(self, *sessions):
        for session in sessions:
            session.leave()
        yield defer.gatherResults([s.left for s in sessions]).addTimeout(TIMEOUT, reactor)
