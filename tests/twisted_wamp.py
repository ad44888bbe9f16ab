"""Autobahn|Python sessions on Twisted joined to a running service (for trial tests)."""

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from twisted.internet import defer, endpoints, reactor

TIMEOUT = 10


class JoinRefused(Exception):
    """The router answered HELLO with ABORT: its *reason* (a URI) and *message*."""

    def __init__(self, reason, message):
        super().__init__(reason, message)
        self.reason, self.message = reason, message


class JoiningSession(ApplicationSession):
    """Fires ``joined`` on WELCOME, and ``left`` once the connection is closed."""

    def __init__(self, config, ticket=None, authid=None):
        super().__init__(config)
        self.ticket, self.join_authid = ticket, authid
        self.joined = defer.Deferred()
        self.left = defer.Deferred()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["ticket"] if self.ticket else None,
                  authid=self.join_authid)

    def onChallenge(self, challenge):
        return self.ticket

    def onJoin(self, details):
        self.details = details
        self.joined.callback(self)

    def onLeave(self, details):
        if not self.joined.called:  # ABORT instead of WELCOME: the router refused us
            self.joined.errback(JoinRefused(details.reason, details.message))
        closed = self._transport.is_closed
        self.disconnect()
        closed.addBoth(lambda _: self.left.callback(details))


@defer.inlineCallbacks
def joined(service, transport="websocket", realm="realm1", ticket=None, authid=None):
    """A session joined to *realm* over *transport* (bounded by TIMEOUT)."""
    created = defer.Deferred()

    def make():
        session = JoiningSession(types.ComponentConfig(realm=realm), ticket, authid)
        created.callback(session)
        return session
    if transport == "websocket":
        factory = WampWebSocketClientFactory(make, url=service.ws_url, serializers=[JsonSerializer()])
    else:
        factory = WampRawSocketClientFactory(make, serializer=MsgPackSerializer())
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", service.port, timeout=TIMEOUT)
    yield endpoint.connect(factory)
    session = yield created.addTimeout(TIMEOUT, reactor)  # after the transport handshake
    yield session.joined.addTimeout(TIMEOUT, reactor)
    return session


@defer.inlineCallbacks
def leave(*sessions):
    """Leave every session and wait (bounded) until each connection is closed."""
    for session in sessions:
        if session.is_attached():
            session.leave()
    yield defer.gatherResults([s.left for s in sessions]).addTimeout(TIMEOUT, reactor)
