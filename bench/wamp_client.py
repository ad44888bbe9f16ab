"""
Open WAMP-over-WebSocket client sessions for the router benchmark.

One small helper, ``connect_session``, used by the benchmark driver and by its
worker processes alike, so every router is measured with the same client:
autobahn-python on Twisted, one TCP connection per session, anonymous join.
"""

from urllib.parse import urlparse

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer}


class SessionLost(Exception):
    """The session closed or its connection dropped before it joined the realm."""


class JoinedSession(ApplicationSession):
    """An application session whose ``joined`` Deferred fires once it has joined."""

    def __init__(self, config):
        super().__init__(config)
        self.joined = Deferred()
        self.disconnected = Deferred()

    def onJoin(self, details):
        self.joined.callback(self)

    def onLeave(self, details):
        self._fail_join(f"left: {details.reason} {details.message or ''}")
        return super().onLeave(details)

    def onDisconnect(self):
        self._fail_join("transport lost")
        super().onDisconnect()
        self.disconnected.callback(None)

    def _fail_join(self, why):
        if not self.joined.called:
            self.joined.errback(SessionLost(why))


async def connect_session(reactor, url, realm, serializer="json", timeout=10.0):
    """Connect to the router at ``url``, join ``realm`` and return the session."""
    session = JoinedSession(ComponentConfig(realm=realm))
    factory = WampWebSocketClientFactory(
        lambda: session, url=url, serializers=[SERIALIZERS[serializer]()]
    )
    address = urlparse(url)
    endpoint = TCP4ClientEndpoint(reactor, address.hostname, address.port, timeout=timeout)
    await endpoint.connect(factory)
    return await session.joined.addTimeout(timeout, reactor)


async def close_sessions(reactor, sessions, timeout=5.0):
    """Leave every session that is still attached and wait until each has disconnected."""
    for session in sessions:
        if session.is_attached():
            session.leave()
    waits = [session.disconnected for session in sessions]
    await gatherResults(waits, consumeErrors=True).addTimeout(timeout, reactor)
