"""Test doubles for the router, shipped as API (like ``treq.testing``).

:class:`MemoryRouter` builds a router on a :class:`twisted.internet.task.Clock`
whose sessions talk over :class:`MemoryChannel`: tests feed Autobahn message
objects in and assert on the message objects that come out, with no socket,
no serializer and no global reactor.
"""

from autobahn.wamp import message, role
from twisted.internet.task import Clock

from broker.auth import DefaultAuthorizer
from broker.router.router import Router, authenticator_factories

CLIENT_ROLES = {
    "caller": role.RoleCallerFeatures(call_canceling=True, progressive_call_results=True),
    "callee": role.RoleCalleeFeatures(call_canceling=True, progressive_call_results=True),
    "publisher": role.RolePublisherFeatures(),
    "subscriber": role.RoleSubscriberFeatures(),
}


class MemoryChannel:
    """A channel that keeps what the router sends, for a test to read."""

    def __init__(self, peer="memory"):
        self.peer = peer
        self.sent = []
        self.closed = False

    def send(self, msg):
        self.sent.append(msg)

    def close(self):
        self.closed = True


class MemoryClient:
    """One client session over a MemoryChannel: ``send`` in, ``received`` out."""

    def __init__(self, router):
        self.channel = MemoryChannel()
        self.session = router.new_session(self.channel)
        self._request = 0

    @property
    def received(self):
        return self.channel.sent

    def request_id(self):
        self._request += 1
        return self._request

    def send(self, msg):
        self.session.message_received(msg)

    def take(self):
        """Every message received since the last take, oldest first."""
        taken, self.channel.sent[:] = list(self.channel.sent), []
        return taken

    def last(self):
        return self.channel.sent[-1]

    def join(self, realm="realm1", authmethods=None, authid=None, roles=None):
        self.send(message.Hello(realm, roles or CLIENT_ROLES, authmethods=authmethods, authid=authid))
        return self


class MemoryRouter:
    """A one-realm router on a fake clock, and a way to connect clients to it."""

    def __init__(self, realm="realm1", authorizer=None, token=None, anonymous=True,
                 host_token=None):
        self.clock = Clock()
        config = {"token": token, "anonymous": anonymous, "host_token": host_token}
        self.router = Router.single_realm(
            realm, authorizer or DefaultAuthorizer(), self.clock, config,
            authenticator_factories(config),
        )
        self.realm = self.router.realms[realm]

    def client(self):
        """A connected, not yet joined client."""
        return MemoryClient(self.router)

    def joined(self, **kwargs):
        """A client that has joined the realm (its WELCOME already taken)."""
        client = self.client().join(realm=self.realm.name, **kwargs)
        welcome = client.take()
        if not isinstance(welcome[0], message.Welcome):
            raise AssertionError(f"expected WELCOME, got {welcome}")
        return client
