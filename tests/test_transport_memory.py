"""WebSocket and RawSocket in memory: handshakes, framing, the first-byte choice, PING/PONG.

The real-socket counterparts are tests/test_fuzz_transports.py and the
interop tests; these run the same factories the service listens with
(:class:`~broker.transport.UniversalFactory` over a ``Site``) on a fake clock,
against hand-made bytes on a ``StringTransport`` or a stock Autobahn client
over ``twisted.test.iosim``.
"""

import broker  # noqa: F401  (first: selects Twisted for txaio)
import base64
import json
import os
import struct

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from broker.rawsocket_frames import PING, PONG, frame
from broker.testing import MemoryRouter
from broker.transport import UniversalFactory, WampRawSocketFactory, WampWebSocketFactory
from broker.web import make_site

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
REALM = "realm1"
HELLO = json.dumps([1, REALM, {"roles": {"caller": {}}}]).encode()
COUNT_SESSIONS = json.dumps([48, 1, {}, "wamp.session.count"]).encode()


def rawsocket_handshake(serializer=1, max_exp=0xF):
    return bytes([0x7F, max_exp << 4 | serializer, 0, 0])


def ws_upgrade(protocol="wamp.2.json", origin=None):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /ws HTTP/1.1", "Host: 127.0.0.1:8080", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             f"Sec-WebSocket-Protocol: {protocol}"]
    if origin:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_frame(payload, opcode=0x1):
    """One masked, final WebSocket frame (what a client sends)."""
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x80 | opcode])
    if size < 126:
        header += bytes([0x80 | size])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", size)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_frames(data):
    """(opcode, payload) of each unmasked frame the server sent in *data*."""
    frames = []
    while data:
        opcode, size, at = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            (size,), at = struct.unpack("!H", data[2:4]), 4
        frames.append((opcode, data[at:at + size]))
        data = data[at + size:]
    return frames


def rs_frames(data):
    """(type, payload) of each RawSocket frame in *data*."""
    frames = []
    while data:
        (prefix,) = struct.unpack("!I", data[:4])
        size = prefix & 0xFFFFFF
        frames.append((prefix >> 24, data[4:4 + size]))
        data = data[4 + size:]
    return frames


class Wire(SynchronousTestCase):
    """The service's listening factory on a fake clock, fed bytes by hand."""

    def setUp(self):
        self.memory = MemoryRouter(realm=REALM)
        self.clock = self.memory.clock
        router = self.memory.router
        websocket = WampWebSocketFactory(router, reactor=self.clock)
        self.rawsocket = WampRawSocketFactory(router, 65536, reactor=self.clock)
        self.factory = UniversalFactory(make_site(websocket, reactor=self.clock),
                                        self.rawsocket, self.clock)
        self.factory.doStart()
        self.addCleanup(self.factory.doStop)

    def connect(self):
        transport = StringTransport(peerAddress=ADDRESS)
        transport.protocol = self.factory.buildProtocol(ADDRESS)
        transport.protocol.makeConnection(transport)
        self.addCleanup(self.disconnect, transport)
        return transport

    def disconnect(self, transport):
        transport.protocol.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(120)   # let Autobahn's and HTTP's timers run out

    def send(self, transport, data, one_byte_at_a_time=False):
        for piece in ([data[i:i + 1] for i in range(len(data))] if one_byte_at_a_time else [data]):
            transport.protocol.dataReceived(piece)
        self.clock.advance(0)

    def take(self, transport):
        data = transport.value()
        transport.clear()
        return data

    def closed(self, transport):
        return transport.disconnecting or getattr(transport, "disconnected", False)


class ReactorArgumentTests(SynchronousTestCase):
    """The listening side never falls back on the global reactor."""

    def test_the_site_and_the_factories_need_a_reactor(self):
        """make_site without a reactor, and the factories without one, are refused."""
        router = MemoryRouter(realm=REALM).router
        websocket = WampWebSocketFactory(router, reactor=Clock())
        self.assertRaises(TypeError, make_site, websocket)
        self.assertRaises(TypeError, WampWebSocketFactory, router)
        self.assertRaises(TypeError, WampRawSocketFactory, router)


class SniffingTests(Wire):
    """The first byte chooses the transport: 0x7F RawSocket, anything else HTTP."""

    def test_0x7f_opens_rawsocket(self):
        """A RawSocket handshake is answered with a RawSocket handshake, the serializer echoed."""
        transport = self.connect()
        self.send(transport, rawsocket_handshake(serializer=2))
        reply = self.take(transport)
        self.assertEqual((reply[:1], reply[1] & 0x0F, reply[2:]), (b"\x7f", 2, b"\x00\x00"))

    def test_other_bytes_are_http(self):
        """A request line goes to the web site: an HTTP response comes back, even a byte at a time."""
        transport = self.connect()
        self.send(transport, b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                  one_byte_at_a_time=True)
        self.assertTrue(self.take(transport).startswith(b"HTTP/1.1 404 "))

    def test_a_rawsocket_handshake_in_pieces(self):
        """The four handshake octets in four reads, then HELLO in the same read as the last: joined."""
        transport = self.connect()
        handshake = rawsocket_handshake()
        self.send(transport, handshake[:3], one_byte_at_a_time=True)
        self.send(transport, handshake[3:] + frame(0, HELLO))
        reply = self.take(transport)
        self.assertEqual(reply[:1], b"\x7f")
        [(kind, welcome)] = rs_frames(reply[4:])
        self.assertEqual((kind, json.loads(welcome)[0]), (0, 2))

    def test_an_unknown_serializer_is_closed(self):
        """A RawSocket handshake asking for serializer 7 is closed, not answered."""
        transport = self.connect()
        self.send(transport, rawsocket_handshake(serializer=7))
        self.assertTrue(self.closed(transport))


class WebSocketWireTests(Wire):
    """The WebSocket opening handshake and WAMP frames, byte by byte."""

    def open(self, **upgrade):
        transport = self.connect()
        self.send(transport, ws_upgrade(**upgrade))
        return transport, self.take(transport)

    def test_upgrade_picks_the_wamp_subprotocol(self):
        """A wamp.2.json upgrade gets 101 with that subprotocol."""
        _, reply = self.open()
        self.assertTrue(reply.startswith(b"HTTP/1.1 101 "), reply)
        self.assertIn(b"Sec-WebSocket-Protocol: wamp.2.json", reply)

    def test_an_unknown_subprotocol_is_refused_with_400(self):
        """An upgrade offering no WAMP subprotocol gets 400 naming the supported ones."""
        transport, reply = self.open(protocol="chat")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply)
        self.assertIn(b"wamp.2.cbor", reply)

    def test_a_foreign_origin_is_refused_with_403(self):
        """A browser upgrade from another origin gets 403."""
        _, reply = self.open(origin="https://elsewhere.example")
        self.assertTrue(reply.startswith(b"HTTP/1.1 403 "), reply)

    def test_hello_in_a_frame_split_across_reads_is_welcomed(self):
        """A masked HELLO frame fed a byte at a time: one unmasked text frame with WELCOME."""
        transport, _ = self.open()
        self.send(transport, ws_frame(HELLO), one_byte_at_a_time=True)
        [(opcode, welcome)] = ws_frames(self.take(transport))
        self.assertEqual((opcode, json.loads(welcome)[0]), (0x1, 2))

    def test_two_messages_in_one_read_are_both_answered(self):
        """HELLO and a CALL in one read: WELCOME, then the call's RESULT, in order."""
        transport, _ = self.open()
        self.send(transport, ws_frame(HELLO) + ws_frame(COUNT_SESSIONS))
        answers = [json.loads(payload)[0] for _, payload in ws_frames(self.take(transport))]
        self.assertEqual(answers, [2, 50])

    def test_websocket_timers_run_on_the_given_clock(self):
        """Autobahn's auto-ping (every 30 s) is sent when the injected clock says so, not the global reactor."""
        transport, _ = self.open()
        self.send(transport, ws_frame(HELLO))
        self.take(transport)
        self.clock.advance(30.5)
        self.assertEqual([opcode for opcode, _ in ws_frames(self.take(transport))], [0x9])

    def test_a_websocket_ping_is_answered(self):
        """A WebSocket PING (opcode 9) gets a PONG (opcode 10) with its payload."""
        transport, _ = self.open()
        self.send(transport, ws_frame(b"are you there", opcode=0x9))
        self.assertEqual(ws_frames(self.take(transport)), [(0xA, b"are you there")])


class RawSocketWireTests(Wire):
    """RawSocket framing after the handshake: messages, PING, PONG, reserved types."""

    def open(self):
        transport = self.connect()
        self.send(transport, rawsocket_handshake() + frame(0, HELLO))
        self.take(transport)
        return transport

    def test_a_ping_is_answered_with_a_pong_of_the_same_payload(self):
        """PING with a payload, and an empty PING: each gets a PONG carrying its payload."""
        transport = self.open()
        self.send(transport, frame(PING, b"\x00\x01ping payload") + frame(PING, b""))
        self.assertEqual(rs_frames(self.take(transport)),
                         [(PONG, b"\x00\x01ping payload"), (PONG, b"")])
        self.assertFalse(self.closed(transport))

    def test_a_ping_between_messages_keeps_their_order(self):
        """CALL, PING, CALL in one read, split a byte at a time: RESULT, PONG, RESULT."""
        transport = self.open()
        second_call = COUNT_SESSIONS.replace(b"[48,1,", b"[48,2,").replace(b"[48, 1,", b"[48, 2,")
        self.send(transport, frame(0, COUNT_SESSIONS) + frame(PING, b"p") + frame(0, second_call),
                  one_byte_at_a_time=True)
        kinds = [(kind, json.loads(p)[:2] if kind == 0 else p)
                 for kind, p in rs_frames(self.take(transport))]
        self.assertEqual(kinds, [(0, [50, 1]), (PONG, b"p"), (0, [50, 2])])

    def test_a_pong_is_ignored(self):
        """An unsolicited PONG gets no answer and the session goes on."""
        transport = self.open()
        self.send(transport, frame(PONG, b"x") + frame(0, COUNT_SESSIONS))
        [(kind, result)] = rs_frames(self.take(transport))
        self.assertEqual((kind, json.loads(result)[0]), (0, 50))

    def test_a_reserved_frame_type_aborts(self):
        """Frame type 3: ABORT protocol_violation naming the type, then closed."""
        transport = self.open()
        self.send(transport, frame(3, b"x"))
        [(kind, abort)] = rs_frames(self.take(transport))
        abort = json.loads(abort)
        self.assertEqual(abort[0], 3)
        self.assertEqual(abort[2], "wamp.error.protocol_violation")
        self.assertIn("frame type 3", abort[1]["message"])
        self.assertTrue(self.closed(transport))

    def test_a_ping_over_the_limit_aborts(self):
        """A PING declaring more than the connection's limit is refused at its prefix."""
        transport = self.open()
        self.send(transport, struct.pack("!I", PING << 24 | 65537))
        [(_, abort)] = rs_frames(self.take(transport))
        self.assertIn("PING of 65537 bytes exceeds the limit of 65536 bytes",
                      json.loads(abort)[1]["message"])
        self.assertTrue(self.closed(transport))

    def test_pings_to_a_peer_that_does_not_read_keep_one_pong(self):
        """While the transport is paused, PINGs leave only the newest PONG, sent first on resume."""
        transport = self.open()
        transport.producer.pauseProducing()
        for i in range(1000):
            self.send(transport, frame(PING, b"%d" % i))
        self.assertEqual(self.take(transport), b"")
        self.assertEqual(transport.producer.held, b"999")
        transport.producer.resumeProducing()
        self.assertEqual(rs_frames(self.take(transport)), [(PONG, b"999")])


class StockClientTests(SynchronousTestCase):
    """Autobahn's own clients join over both transports, in memory (twisted.test.iosim)."""

    def setUp(self):
        self.memory = MemoryRouter(realm=REALM)
        self.clock = self.memory.clock
        router = self.memory.router
        websocket = WampWebSocketFactory(router, reactor=self.clock)
        rawsocket = WampRawSocketFactory(router, reactor=self.clock)
        self.factory = UniversalFactory(make_site(websocket, reactor=self.clock), rawsocket,
                                        self.clock)

    def session(self):
        joined = []

        class Counting(ApplicationSession):
            def onJoin(self, details):
                self.call("wamp.session.count").addCallback(joined.append)

        return Counting(types.ComponentConfig(realm=REALM)), joined

    def run_client(self, client_factory):
        server = self.factory.buildProtocol(ADDRESS)
        client = client_factory.buildProtocol(ADDRESS)
        server_io = iosim.FakeTransport(server, isServer=True)
        client_io = iosim.FakeTransport(client, isServer=False)
        pump = iosim.connect(server, server_io, client, client_io, clock=self.clock)
        pump.flush()
        self.addCleanup(self.close, pump, server_io)
        return pump

    def close(self, pump, transport):
        transport.loseConnection()
        pump.flush()
        self.clock.advance(120)

    def test_websocket_json_and_msgpack(self):
        """An Autobahn WebSocket client joins and calls, with JSON and with MessagePack."""
        for serializer in (JsonSerializer(), MsgPackSerializer()):
            session, answers = self.session()
            self.run_client(WampWebSocketClientFactory(
                lambda: session, url="ws://127.0.0.1:8080/ws", serializers=[serializer],
                reactor=self.clock))
            self.assertEqual(len(answers), 1)   # wamp.session.count answered

    def test_rawsocket_json_and_msgpack(self):
        """An Autobahn RawSocket client joins and calls, with JSON and with MessagePack."""
        for serializer in (JsonSerializer(), MsgPackSerializer()):
            session, answers = self.session()
            self.run_client(WampRawSocketClientFactory(lambda: session, serializer=serializer))
            self.assertEqual(len(answers), 1)   # wamp.session.count answered
