"""An in-process Autobahn session attached to the router without a socket."""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp import message, types
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.auth import KERNEL_HOST_ROLE, Principal
from broker.router.local import attach
from broker.testing import MemoryRouter


class HostSession(ApplicationSession):
    """Joins, then records what happens to it."""

    def onJoin(self, details):
        self.details = details
        self.left = None

    def onLeave(self, details):
        self.left = details


def host_principal():
    return Principal("host", KERNEL_HOST_ROLE, "local")


class LocalSessionTests(SynchronousTestCase):
    """The kernel host's way onto the router."""

    def setUp(self):
        self.memory = MemoryRouter()
        self.host = HostSession(types.ComponentConfig(realm="realm1"))
        self.clock = self.memory.clock
        self.transport = attach(self.memory.router, self.host, host_principal(), self.clock)
        self.clock.advance(0)

    def test_joins_with_the_given_role(self):
        """The local session is welcomed as the principal the service chose."""
        self.assertEqual((self.host.details.authid, self.host.details.authrole),
                         ("host", KERNEL_HOST_ROLE))
        self.assertEqual(len(self.memory.realm.sessions), 1)

    def test_registers_in_reserved_namespace_and_serves_calls(self):
        """It may register under webkernel.; a network client's call reaches it."""
        results = []
        d = self.host.register(lambda a: a * 2, "webkernel.double")
        d.addCallback(results.append)
        self.clock.advance(0)
        self.assertEqual(len(results), 1)
        client = self.memory.joined()
        client.send(message.Call(1, "webkernel.double", args=[21]))
        self.clock.advance(0)
        self.assertEqual(client.take()[-1].args, [42])

    def test_publishes_to_network_clients(self):
        """Its publications reach subscribers; a client may not publish there."""
        client = self.memory.joined()
        client.send(message.Subscribe(1, "webkernel.kernels.events"))
        client.take()
        self.host.publish("webkernel.kernels.events", "started")
        self.assertEqual(list(client.take()[-1].args), ["started"])
        client.send(message.Publish(2, "webkernel.kernels.events", args=["fake"], acknowledge=True))
        self.assertEqual(client.take()[-1].error, errors.NOT_AUTHORIZED)

    def test_leave_and_shutdown(self):
        """Leaving removes it from the realm; router shutdown closes it."""
        self.host.leave()
        self.clock.advance(0)
        self.assertEqual(self.memory.realm.sessions, {})
        self.assertIsNotNone(self.host.left)
        other = HostSession(types.ComponentConfig(realm="realm1"))
        attach(self.memory.router, other, host_principal(), self.clock)
        self.clock.advance(0)
        self.memory.router.shutdown()
        self.clock.advance(0)
        self.assertEqual(other.left.reason, errors.SYSTEM_SHUTDOWN)

    def test_a_call_autobahn_cannot_make_is_refused_and_the_batch_goes_on(self):
        """Keywords that clash with Autobahn's own (self, fun) get invalid_argument; calls queued
        with it are still served."""
        self.host.register(lambda **kw: sorted(kw), "webkernel.keys")
        self.clock.advance(0)
        client = self.memory.joined()
        client.send(message.Call(1, "webkernel.keys", kwargs={"self": 1}))
        client.send(message.Call(2, "webkernel.keys", kwargs={"fun": 1}))
        client.send(message.Call(3, "webkernel.keys", kwargs={"a": 1}))
        self.clock.advance(0)
        answers = {m.request: m for m in client.take()}
        self.assertEqual([answers[1].error, answers[2].error],
                         [errors.INVALID_ARGUMENT, errors.INVALID_ARGUMENT])
        self.assertEqual(answers[3].args, [["a"]])
        self.assertEqual(len(self.memory.realm.dealer.calls), 0)
