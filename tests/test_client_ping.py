"""The Python client pings the router, so a half-open connection (a network partition) is dropped.

In memory: the client of :func:`broker.client.connect_async` against the
service's own listening factories over ``twisted.test.iosim``, time a
``task.Clock``. A partition is a link that stops carrying bytes either
way without closing: no FIN, no RST.
"""

import broker  # noqa: F401  (first: selects Twisted for txaio)
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from broker.client import asynchronous, session as client_session
from broker.client.reconnect import FIRST_DELAY
from broker.testing import MemoryRouter
from broker.transport import UniversalFactory, WampRawSocketFactory, WampWebSocketFactory
from broker.web import make_site

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
REALM = "realm1"
URL = "ws://127.0.0.1:8080/ws"


class Link(iosim.FakeTransport):
    """One end of an in-memory link that a test may cut: then what is written is lost."""

    cut = False

    def write(self, data):
        if not self.cut:
            super().write(data)


class MemoryEndpoint:
    """Connects each client factory to the router in memory; keeps every link's pump."""

    def __init__(self, factory, clock):
        self.factory = factory
        self.clock = clock
        self.links = []

    def connect(self, client_factory):
        server = self.factory.buildProtocol(ADDRESS)
        client = client_factory.buildProtocol(ADDRESS)
        server_io, client_io = Link(server, isServer=True), Link(client, isServer=False)
        pump = iosim.connect(server, server_io, client, client_io, greet=False, clock=self.clock)
        self.links.append((pump, server_io, client_io))
        return defer.succeed(client)

    def flush(self):
        for pump, _, _ in self.links:
            pump.flush()

    def cut(self, index):
        """A partition: link *index* carries nothing more, and nobody is told."""
        _, server_io, client_io = self.links[index]
        server_io.cut = client_io.cut = True


class ClientPingTests(SynchronousTestCase):
    """A client whose pings get no pong drops the connection and reconnects; pongs keep it."""

    def setUp(self):
        self.memory = MemoryRouter(realm=REALM)
        self.clock = self.memory.clock
        router = self.memory.router
        websocket = WampWebSocketFactory(router, reactor=self.clock)
        listening = UniversalFactory(make_site(websocket, reactor=self.clock),
                                     WampRawSocketFactory(router, reactor=self.clock), self.clock)
        self.endpoint = MemoryEndpoint(listening, self.clock)
        self.patch(client_session, "_endpoint", lambda reactor, ws_url, timeout: self.endpoint)

    def connect(self, **ping):
        d = asynchronous.connect_async(URL, realm=REALM, reactor=self.clock, **ping)
        self.endpoint.flush()
        client = self.successResultOf(d)
        self.addCleanup(self.close, client)
        return client

    def close(self, client):
        closed = client.close()
        closed.addErrback(lambda failure: failure.trap(defer.TimeoutError))  # over a cut link
        self.endpoint.flush()
        self.clock.advance(120)  # Autobahn's closing timers
        self.endpoint.flush()

    def run_for(self, seconds, step=0.5):
        """Let *seconds* pass, the links delivering what they carry as time goes."""
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.endpoint.flush()

    def pings_sent(self, index=0):
        _, _, client_io = self.endpoint.links[index]
        return client_io.protocol.autoPingPendingSeq

    def test_no_pong_within_the_timeout_drops_the_connection_and_reconnects(self):
        """Behind a partition the client's ping gets no pong: after interval + timeout the connection is dropped and a new one joins."""
        client = self.connect(ping_interval=10, ping_timeout=5)
        first = client.session
        self.endpoint.cut(0)
        self.run_for(10)
        self.assertEqual(self.pings_sent(), 1)
        self.assertIs(client.session, first)  # waiting for the pong
        self.run_for(4.5)
        self.assertTrue(first.is_attached())
        self.run_for(0.5)
        self.assertTrue(first.is_gone)
        self.assertIsNone(client.session)  # reconnecting
        self.run_for(FIRST_DELAY + 0.5)
        self.assertEqual(len(self.endpoint.links), 2)
        self.assertIsNot(client.session, None)
        self.assertTrue(client.session.is_attached())
        self.assertEqual(client.session.authid, first.authid)

    def test_pongs_keep_the_connection(self):
        """While the router answers, pings go on and the connection stays, however long it is quiet."""
        client = self.connect(ping_interval=10, ping_timeout=5)
        first = client.session
        self.run_for(100)
        self.assertGreaterEqual(self.pings_sent(), 9)
        self.assertIs(client.session, first)
        self.assertTrue(first.is_attached())
        self.assertEqual(len(self.endpoint.links), 1)

    def test_defaults(self):
        """Without arguments the client pings every 10 s and waits 5 s for the pong."""
        self.connect()
        _, _, client_io = self.endpoint.links[0]
        protocol = client_io.protocol
        self.assertEqual((protocol.autoPingInterval, protocol.autoPingTimeout), (10.0, 5.0))

    def test_ping_interval_none_sends_no_pings(self):
        """ping_interval=None: no pings, and a partition goes unnoticed (the old behaviour)."""
        client = self.connect(ping_interval=None)
        first = client.session
        self.endpoint.cut(0)
        self.run_for(60)
        self.assertEqual(self.pings_sent(), 0)
        self.assertIs(client.session, first)

    def test_bad_ping_settings_are_refused(self):
        """A ping interval or timeout that is not a positive number is a ValueError at once."""
        for ping in ({"ping_interval": 0}, {"ping_timeout": -1}, {"ping_interval": "10"}):
            with self.assertRaises(ValueError):
                asynchronous.connect_async(URL, reactor=self.clock, **ping)
