"""A connection that never opens a transport, or never joins, is closed after OPENING_TIMEOUT."""

import broker  # noqa: F401  (first: selects Twisted for txaio)
import json
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from broker.testing import MemoryRouter
from broker.transport import OPENING_TIMEOUT, UniversalFactory, WampRawSocketFactory

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
RAWSOCKET_JSON = b"\x7f\xf1\x00\x00"   # max length 2**24, serializer 1 (JSON)


class OpeningDeadlineTests(SynchronousTestCase):

    def setUp(self):
        self.memory = MemoryRouter()
        self.clock = self.memory.clock
        self.factory = UniversalFactory(
            Site(Resource(), reactor=self.clock),
            WampRawSocketFactory(self.memory.router, reactor=self.clock), clock=self.clock)

    def connect(self):
        protocol = self.factory.buildProtocol(ADDRESS)
        transport = StringTransport(peerAddress=ADDRESS)
        transport.protocol = protocol   # the sniffer hands the transport on by replacing it
        protocol.makeConnection(transport)
        return transport

    def send(self, transport, data):
        transport.protocol.dataReceived(data)

    def closed(self, transport):
        return transport.disconnecting or getattr(transport, "disconnected", False)

    def test_a_silent_connection_is_closed(self):
        """Nothing sent: closed once OPENING_TIMEOUT has passed, not before."""
        transport = self.connect()
        self.clock.advance(OPENING_TIMEOUT - 1)
        self.assertFalse(self.closed(transport))
        self.clock.advance(1)
        self.assertTrue(self.closed(transport))

    def test_an_unfinished_rawsocket_handshake_is_closed(self):
        """One byte of the four-byte RawSocket handshake: closed at the deadline."""
        transport = self.connect()
        self.send(transport, b"\x7f")
        self.clock.advance(OPENING_TIMEOUT)
        self.assertTrue(self.closed(transport))

    def test_a_session_that_never_says_hello_is_closed(self):
        """A finished handshake has OPENING_TIMEOUT more to join; then it is closed."""
        transport = self.connect()
        self.send(transport, RAWSOCKET_JSON)
        self.assertEqual(transport.value()[:1], b"\x7f")   # the handshake's answer
        self.clock.advance(OPENING_TIMEOUT - 1)
        self.assertFalse(self.closed(transport))
        self.clock.advance(1)
        self.assertTrue(self.closed(transport))
        self.assertIsNone(transport.protocol.session)

    def test_a_joined_session_stays(self):
        """HELLO within the deadline: the session is joined and never closed for it."""
        transport = self.connect()
        self.send(transport, RAWSOCKET_JSON)
        hello = json.dumps([1, "realm1", {"roles": {"subscriber": {}}}]).encode()
        self.send(transport, struct.pack("!I", len(hello)) + hello)
        self.clock.advance(0)
        self.assertIn(b"[2,", transport.value())   # WELCOME
        self.clock.advance(OPENING_TIMEOUT * 3)
        self.assertFalse(self.closed(transport))

    def test_http_is_left_to_its_own_timeouts(self):
        """A connection that starts HTTP is not closed by this deadline."""
        transport = self.connect()
        self.send(transport, b"GET / HTTP/1.1\r\n")
        self.clock.advance(OPENING_TIMEOUT)
        self.assertFalse(self.closed(transport))

    def test_the_http_idle_timeout_runs_on_the_given_clock(self):
        """An idle HTTP connection is closed by the site's timeout on the injected clock, not the global reactor's."""
        transport = self.connect()
        self.send(transport, b"GET / HTTP/1.1\r\n")
        self.clock.advance(self.factory.web.timeOut)
        self.assertTrue(self.closed(transport))
