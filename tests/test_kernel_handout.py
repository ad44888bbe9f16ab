"""The path from ``kernels.start`` to a callable kernel holds no avoidable sequential round trip."""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from broker.kernel import procedures


class FakeKernel:
    id = "k" * 32


class FakeHost:
    """A session whose REGISTERs are answered only when the test says so."""

    def __init__(self):
        self.asked = []

    def register(self, endpoint, uri, options=None):
        d = defer.Deferred()
        self.asked.append((uri, d))
        return d


class RegisterAllTests(SynchronousTestCase):
    """A kernel's procedures are registered in one round trip to the router, not one per procedure."""

    def test_every_register_is_sent_before_any_answer(self):
        """All REGISTERs go out at once; the result is every registration, in order, once all answered."""
        host = FakeHost()
        d = procedures.register_all(host, FakeKernel())
        names = [*procedures.PROCEDURES, *procedures.LIFECYCLE]
        self.assertEqual([uri.rsplit(".", 1)[1] for uri, _ in host.asked], names)
        self.assertNoResult(d)
        for uri, answer in host.asked:
            answer.callback(f"registration of {uri}")
        self.assertEqual(self.successResultOf(d),
                         [f"registration of {uri}" for uri, _ in host.asked])

    def test_a_refusal_fails_with_the_routers_error(self):
        """One refused REGISTER fails the whole with that refusal, not a wrapper."""
        host = FakeHost()
        d = procedures.register_all(host, FakeKernel())
        for i, (uri, answer) in enumerate(host.asked):
            if i == 3:
                answer.errback(ValueError("procedure already exists"))
            else:
                answer.callback(uri)
        self.assertIn("already exists", self.failureResultOf(d, ValueError).getErrorMessage())
