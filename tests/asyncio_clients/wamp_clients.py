"""Unmodified Autobahn|Python sessions (asyncio flavour) joined to a router over real sockets.

``await joined(service, transport, serializer)`` returns a joined
``ApplicationSession``; every wait is bounded.
"""

import asyncio

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
TIMEOUT = 10


class Session(ApplicationSession):
    """Resolves ``joined`` with itself when WELCOME arrives, or fails on ABORT."""

    def __init__(self, config, ticket=None):
        super().__init__(config)
        self.ticket = ticket
        self.joined = asyncio.get_running_loop().create_future()
        self.left = asyncio.get_running_loop().create_future()

    def onConnect(self):
        methods = ["ticket"] if self.ticket else None
        self.join(self.config.realm, authmethods=methods, authid=self.config.extra.get("authid"))

    def onChallenge(self, challenge):
        return self.ticket

    def onJoin(self, details):
        self.details = details
        if not self.joined.done():
            self.joined.set_result(self)

    def onLeave(self, details):
        if not self.joined.done():
            self.joined.set_exception(ConnectionRefusedError(f"{details.reason}: {details.message}"))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()


async def joined(service, transport="websocket", serializer="json", realm="realm1",
                 authid=None, ticket=None):
    """A session joined to *realm* on *service* over *transport* with *serializer*."""
    loop = asyncio.get_running_loop()
    config = types.ComponentConfig(realm=realm, extra={"authid": authid})
    created = loop.create_future()

    def make():
        session = Session(config, ticket)
        created.set_result(session)
        return session

    if transport == "websocket":
        factory = WampWebSocketClientFactory(make, url=service.ws_url,
                                             serializers=[SERIALIZERS[serializer]()])
    else:
        factory = WampRawSocketClientFactory(make, serializer=SERIALIZERS[serializer]())
    await asyncio.wait_for(loop.create_connection(factory, "127.0.0.1", service.port), TIMEOUT)
    session = await asyncio.wait_for(created, TIMEOUT)
    return await asyncio.wait_for(session.joined, TIMEOUT)


async def leave(*sessions):
    """Leave every session and wait (bounded) until each is gone."""
    for session in sessions:
        if session.is_attached():
            session.leave()
    await asyncio.wait_for(asyncio.gather(*(s.left for s in sessions)), TIMEOUT)
