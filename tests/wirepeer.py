"""A WAMP peer on a plain blocking socket, for every transport and serializer the service serves.

Real client libraries refuse to send malformed input, and bringing up a
reactor for each of thousands of fuzz connections would be slow, so the fuzz
tests speak the wire directly (the framing helpers are :mod:`tests.rawwire`'s).
A :class:`WirePeer` frames payloads for WebSocket (``/ws``, subprotocol
``wamp.2.<serializer>``) or RawSocket (serializer id 1 or 2), answers the
service's WebSocket pings, and waits with a deadline, never forever.
"""

import base64
import json
import socket
import struct
import time

import cbor2
import msgpack

from tests import rawwire

#: how long a peer waits for an answer the service owes it
ANSWER_WITHIN = 10

WEBSOCKET, RAWSOCKET = "websocket", "rawsocket"
RAWSOCKET_IDS = {"json": 1, "msgpack": 2}
RAWSOCKET_PING, RAWSOCKET_PONG = 1, 2   # frame types


def _json_binary(value):
    """WAMP's JSON form of binary: a string of a NUL and the base64 of the bytes."""
    if isinstance(value, bytes):
        return "\x00" + base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


SERIALIZERS = {
    "json": (lambda msg: json.dumps(msg, default=_json_binary).encode(), json.loads),
    "msgpack": (lambda msg: msgpack.packb(msg, use_bin_type=True),
                lambda data: msgpack.unpackb(data, raw=False, strict_map_key=False)),
    "cbor": (cbor2.dumps, cbor2.loads),
}
#: every (transport, serializer) the service speaks (docs/protocol.md)
COMBINATIONS = [(WEBSOCKET, "json"), (WEBSOCKET, "msgpack"), (WEBSOCKET, "cbor"),
                (RAWSOCKET, "json"), (RAWSOCKET, "msgpack")]

HELLO_ROLES = {"caller": {"features": {"progressive_call_results": True, "call_canceling": True}},
               "callee": {"features": {"progressive_call_results": True, "call_canceling": True}},
               "publisher": {}, "subscriber": {}}

# WAMP message type codes used here
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED = 16, 17, 32, 33
EVENT, CALL, RESULT, REGISTER, REGISTERED = 36, 48, 50, 64, 65


class Closed(Exception):
    """The service closed the connection (``frames`` holds what came before)."""

    def __init__(self, how, frames=()):
        super().__init__(how)
        self.how = how
        self.frames = list(frames)


class NoAnswer(AssertionError):
    """The service neither answered nor closed within the deadline."""


class WirePeer:
    """One connection to the service, opened up to the transport handshake."""

    def __init__(self, port, transport, serializer, max_exp=0xF):
        self.transport, self.serializer = transport, serializer
        self.encode, self.decode = SERIALIZERS[serializer]
        self.binary = serializer != "json"
        self._buffer = b""
        self.close_code = None
        self.pongs = []   # payloads of the RawSocket PONGs received
        if transport == WEBSOCKET:
            status, self.sock = rawwire.websocket(port, protocol=f"wamp.2.{serializer}")
            if status != 101:
                self.sock.close()
                raise AssertionError(f"WebSocket handshake answered {status}")
        else:
            reply, self.sock = rawwire.rawsocket(port, RAWSOCKET_IDS[serializer], max_exp)
            if reply[:1] != b"\x7f" or reply[1] & 0x0F != RAWSOCKET_IDS[serializer]:
                self.sock.close()
                raise AssertionError(f"RawSocket handshake answered {reply!r}")
        self.sock.settimeout(ANSWER_WITHIN)

    # -- sending ------------------------------------------------------------------

    def send(self, msg):
        """Send one WAMP message (any Python value: it need not be a valid message)."""
        self.send_payload(self.encode(msg))

    def send_payload(self, payload, binary=None):
        """Send one transport message carrying *payload* (bytes)."""
        if self.transport == WEBSOCKET:
            binary = self.binary if binary is None else binary
            rawwire.ws_send(self.sock, payload, opcode=0x2 if binary else 0x1)
        else:
            self.sock.sendall(struct.pack("!I", len(payload)) + payload)

    def send_raw(self, data):
        """Send bytes as they are (no framing)."""
        self.sock.sendall(data)

    # -- receiving ------------------------------------------------------------------

    def _read(self, size, deadline):
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoAnswer("no answer within the deadline")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise NoAnswer("no answer within the deadline") from None
            except ConnectionError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def recv_frame(self, deadline):
        """The next RawSocket frame: ``(type, payload)``."""
        (header,) = struct.unpack("!I", self._read(4, deadline))
        return header >> 24, self._read(header & 0xFFFFFF, deadline)

    def recv_payload(self, timeout=ANSWER_WITHIN):
        """The next transport message's payload; raises Closed or NoAnswer."""
        deadline = time.monotonic() + timeout
        if self.transport == RAWSOCKET:
            while True:
                kind, payload = self.recv_frame(deadline)
                if kind == RAWSOCKET_PONG:   # the answer to a PING sent before
                    self.pongs.append(payload)
                    continue
                assert kind == 0, f"RawSocket frame type {kind} from the service"
                return payload
        while True:
            first, second = self._read(2, deadline)
            assert second & 0x80 == 0, "the service masked a frame"
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2, deadline))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8, deadline))
            opcode, payload = first & 0x0F, self._read(size, deadline)
            if opcode == 0x9:  # ping: answer, as any client must
                rawwire.ws_send(self.sock, payload, opcode=0xA)
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(f"WebSocket close {self.close_code}")
            elif opcode in (0x1, 0x2):
                assert first & 0x80, "the service fragmented a message"
                return payload

    def recv(self, timeout=ANSWER_WITHIN):
        """The next WAMP message (decoded)."""
        return self.decode(self.recv_payload(timeout))

    def until(self, predicate, timeout=ANSWER_WITHIN):
        """Messages received until one satisfies *predicate* (that one last)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                msg = self.recv(max(0.0, deadline - time.monotonic()))
            except Closed as e:
                e.frames = seen
                raise
            seen.append(msg)
            if predicate(msg):
                return seen

    def closed_within(self, timeout=ANSWER_WITHIN):
        """Read (and discard) until the service closes; False if it has not within *timeout*."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.recv_payload(max(0.0, deadline - time.monotonic()))
        except Closed:
            return True
        except NoAnswer:
            return False
        except (AssertionError, ValueError):  # not a frame we understand: read raw to EOF
            return self._eof_within(deadline)

    def _eof_within(self, deadline):
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except ConnectionError:
                return True
            except socket.timeout:
                return False
        return False

    def close(self):
        self.sock.close()

    # -- WAMP -------------------------------------------------------------------------

    def join(self, realm="webkernel"):
        """HELLO (anonymous); return the WELCOME."""
        self.send([HELLO, realm, {"roles": HELLO_ROLES}])
        welcome = self.recv()
        assert welcome[0] == WELCOME, welcome
        self.session_id = welcome[1]
        return welcome

    def call(self, request, procedure, args=None, kwargs=None, options=None, timeout=ANSWER_WITHIN):
        """CALL and wait for its RESULT or ERROR (events and other messages before it are skipped)."""
        msg = [CALL, request, options or {}, procedure]
        if args is not None or kwargs is not None:
            msg.append(list(args or []))
        if kwargs is not None:
            msg.append(kwargs)
        self.send(msg)
        return self.answer_to(request, timeout)

    def answer_to(self, request, timeout=ANSWER_WITHIN):
        """Wait for the non-progressive RESULT, or the ERROR, of *request* (or an ABORT, GOODBYE).

        What came before it is kept in ``passed``.
        """
        def final(msg):
            if msg[0] in (ABORT, GOODBYE):
                return True
            if msg[0] == RESULT and msg[1] == request and not msg[2].get("progress"):
                return True
            return msg[0] == ERROR and msg[1] == CALL and msg[2] == request
        seen = self.until(final, timeout)
        self.passed = seen[:-1]
        return seen[-1]


def joined(port, transport, serializer):
    """A WirePeer that has joined the realm."""
    peer = WirePeer(port, transport, serializer)
    try:
        peer.join()
    except BaseException:
        peer.close()
        raise
    return peer
