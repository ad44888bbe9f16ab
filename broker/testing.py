"""Test doubles for the router, shipped as API (like ``treq.testing``).

:class:`MemoryRouter` builds a router on a :class:`twisted.internet.task.Clock`
whose sessions talk over :class:`MemoryChannel`: tests feed Autobahn message
objects in and assert on the message objects that come out, with no socket,
no serializer and no global reactor.
"""

from autobahn.wamp import message, role
from twisted.internet.task import Clock

from broker.auth import DefaultAuthorizer
from broker.router.local import attacher
from broker.router.router import Router, authenticator_factories
from broker.router.session import RouterSession

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
    """One client session over a MemoryChannel: ``send`` in, ``received`` out.

    With a *principal* the session is welcomed as it whatever it asks for,
    as an in-process service session is.
    """

    def __init__(self, router, principal=None):
        self.channel = MemoryChannel()
        self.session = (router.new_session(self.channel) if principal is None
                        else RouterSession(router, self.channel, principal=principal))
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
        #: ``attach(app_session, principal)``, as the wiring hands it to services
        self.attach = attacher(self.router, self.clock)

    def client(self, principal=None):
        """A connected, not yet joined client (to be welcomed as *principal* if given)."""
        return MemoryClient(self.router, principal)

    def joined(self, principal=None, **kwargs):
        """A client that has joined the realm (its WELCOME already taken)."""
        client = self.client(principal).join(realm=self.realm.name, **kwargs)
        welcome = client.take()
        if not isinstance(welcome[0], message.Welcome):
            raise AssertionError(f"expected WELCOME, got {welcome}")
        return client


def run_due(clock):
    """Run what is due now on *clock*, and what that schedules for now, until nothing is.

    Deliveries between the router and attached parts are ``callLater(0, …)``
    on the router's clock: this settles them without moving time on.
    """
    while any(c.getTime() <= clock.seconds() for c in clock.getDelayedCalls()):
        clock.advance(0)
