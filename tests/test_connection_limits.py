"""Connections are bounded per address and in all, counted until they close, whatever protocol takes them over."""

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionDone
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from broker.connection_limits import (
    FD_RESERVE, FDS_PER_KERNEL, MIN_TOTAL, LimitedFactory, address_key, default_max_connections,
)
from broker.testing import MemoryRouter
from broker.transport import UniversalFactory, WampRawSocketFactory, WampWebSocketFactory
from broker.web import make_site


def ipv4(host, port=40000):
    return IPv4Address("TCP", host, port)


class LimitedFactoryTests(SynchronousTestCase):

    def setUp(self):
        self.factory = LimitedFactory(Factory.forProtocol(Protocol), per_address=3, total=5)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def connect(self, address):
        protocol = self.factory.buildProtocol(address)
        if protocol is None:
            return None
        transport = StringTransport(peerAddress=address)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol

    def close(self, protocol):
        protocol.connectionLost(Failure(ConnectionDone()))

    def refusals(self):
        return [e for e in self.logged if "refusing" in e.get("log_format", "")]

    def test_one_address_is_capped(self):
        """Slowloris from one address: past per_address its connections are closed, others still connect."""
        held = [self.connect(ipv4("10.0.0.1", p)) for p in range(3)]
        self.assertIsNone(self.connect(ipv4("10.0.0.1", 9)))
        self.assertIsNotNone(self.connect(ipv4("10.0.0.2")))
        self.close(held[0])
        self.assertIsNotNone(self.connect(ipv4("10.0.0.1", 10)))

    def test_total_is_capped(self):
        """Past total, every new connection is closed until one goes away."""
        held = [self.connect(ipv4(f"10.0.0.{n}")) for n in range(5)]
        self.assertIsNone(self.connect(ipv4("10.0.1.1")))
        self.close(held[2])
        self.assertIsNotNone(self.connect(ipv4("10.0.1.1")))

    def test_refusing_is_logged_once_per_episode(self):
        """A thousand refusals log one warning, and one line when connections are taken again."""
        held = [self.connect(ipv4("10.0.0.1", p)) for p in range(3)]
        for port in range(1000):
            self.connect(ipv4("10.0.0.1", 1000 + port))
        self.assertEqual(len(self.refusals()), 1)
        self.close(held[0])
        again = [e for e in self.logged if "again" in e.get("log_format", "")]
        self.assertEqual(again[0]["refused"], 1000)
        self.connect(ipv4("10.0.0.1", 5))
        self.connect(ipv4("10.0.0.1", 6))
        self.assertEqual(len(self.refusals()), 2)

    def test_unix_connections_count_only_in_total(self):
        """Unix-socket peers have no address: only the total applies to them."""
        for _ in range(5):
            self.assertIsNotNone(self.connect(UNIXAddress(None)))
        self.assertIsNone(self.connect(UNIXAddress(None)))

    def test_address_key(self):
        """IPv4 counts per address, IPv6 per /64, an IPv4-mapped IPv6 address as its IPv4 one."""
        self.assertEqual(address_key(ipv4("10.0.0.1")), "10.0.0.1")
        self.assertEqual(address_key(IPv6Address("TCP", "2001:db8::1:2", 1)),
                         address_key(IPv6Address("TCP", "2001:db8::ffff:3", 1)))
        self.assertEqual(address_key(IPv6Address("TCP", "::ffff:10.0.0.1", 1)), "10.0.0.1")
        self.assertIsNone(address_key(UNIXAddress(None)))

    def test_default_total_keeps_descriptors_for_kernels(self):
        """The default total leaves the reserve and each kernel's descriptors out of RLIMIT_NOFILE."""
        self.assertEqual(default_max_connections(20, soft_limit=1024),
                         1024 - FD_RESERVE - 20 * FDS_PER_KERNEL)
        self.assertEqual(default_max_connections(100, soft_limit=256), MIN_TOTAL)


class HandedOverConnectionTests(SynchronousTestCase):
    """The count follows a connection the sniffer hands to HTTP or RawSocket, and a WebSocket upgrade, under TLS too."""

    def setUp(self):
        memory = MemoryRouter()
        websocket = WampWebSocketFactory(memory.router, reactor=memory.clock)
        universal = UniversalFactory(make_site(websocket, reactor=memory.clock),
                                     WampRawSocketFactory(memory.router, reactor=memory.clock),
                                     clock=memory.clock)
        self.factory = LimitedFactory(universal, per_address=2, total=10)

    def connect(self, first_bytes, outer_wrapper=False):
        """A connection as the port makes it; *outer_wrapper* puts a ProtocolWrapper outside, as TLS does."""
        protocol = self.factory.buildProtocol(ipv4("10.0.0.1"))
        if outer_wrapper:
            protocol = ProtocolWrapper(WrappingFactory(None), protocol)
        transport = StringTransport(peerAddress=ipv4("10.0.0.1"))
        transport.protocol = protocol
        protocol.makeConnection(transport)
        transport.protocol.dataReceived(first_bytes)
        return transport

    def lose(self, transport):
        transport.protocol.connectionLost(Failure(ConnectionDone()))

    def full(self):
        return self.factory.buildProtocol(ipv4("10.0.0.1")) is None

    def test_http_and_rawsocket_connections_are_counted_until_lost(self):
        """Both transports count; losing one frees its slot."""
        http = self.connect(b"GET / HTTP/1.1\r\n")
        self.connect(b"\x7f\xf1\x00\x00")
        self.assertTrue(self.full())
        self.lose(http)
        self.assertFalse(self.full())

    def test_websocket_upgrade_keeps_the_count_under_tls(self):
        """A WebSocket (Autobahn takes the connection over from HTTP) inside a TLS-like wrapper is counted until lost."""
        upgrade = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n")
        sockets = [self.connect(upgrade, outer_wrapper=True) for _ in range(2)]
        self.assertIn(b"101 Switching Protocols", sockets[0].value())
        self.assertTrue(self.full())
        self.lose(sockets[0])
        self.assertFalse(self.full())
