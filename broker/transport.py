"""WAMP transports: WebSocket and RawSocket on one port, with bounded output.

* :class:`WampWebSocketProtocol`: WAMP over WebSocket (JSON, MessagePack,
  CBOR), served under ``/ws`` by Twisted Web, with the ``Origin`` check.
* :class:`WampRawSocketProtocol`: WAMP over RawSocket (JSON, MessagePack),
  answering PING with PONG (framing in :mod:`broker.rawsocket_frames`).
* :class:`UniversalFactory`: one listening port for both, deciding by the
  first byte (``0x7F`` opens RawSocket, anything else is HTTP), as Crossbar.io's
  universal transport does.

Each connection is a *channel* for one :class:`~broker.router.session.RouterSession`.
An :class:`~broker.router.backpressure.OutboundQueue` holds what the socket
will not take yet, bounded: events the router's backlog policy concerns (kernel
output) are coalesced, then replaced by gap markers, and a session whose backlog still passes the limit is closed with a
logged reason instead of letting the process grow.
"""

import base64
import decimal
import json
from urllib.parse import urlsplit

import attr
from autobahn.twisted.rawsocket import WampRawSocketServerFactory, WampRawSocketServerProtocol
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.wamp.serializer import (
    CBORSerializer, JsonObjectSerializer, JsonSerializer, MsgPackSerializer,
)
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper

from broker import errors
from broker.errors import ProtocolViolation
from broker.rawsocket_frames import MESSAGE, PING, FrameReader, FrameRefused, PongAnswers, frame
from broker.router.backpressure import DEFAULT_COALESCE_ABOVE, DEFAULT_GAP_ABOVE, OutboundQueue
from broker.router.wire import InvalidRequestUri, decode, encode
from broker.timers import ReactorTimers

_log = Logger()  # not a class attribute: Autobahn's protocols have their own `log`

DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


@attr.s(frozen=True)
class OutputLimits:
    """Per-session bounds on output waiting for a slow peer (see broker.router.backpressure)."""

    coalesce_above = attr.ib(default=DEFAULT_COALESCE_ABOVE)
    gap_above = attr.ib(default=DEFAULT_GAP_ABOVE)
    max_output = attr.ib(default=DEFAULT_MAX_OUTPUT)


#: seconds a connection has to choose its transport (its first byte), finish the
#: RawSocket handshake, and join a realm (HELLO to WELCOME); then it is closed
OPENING_TIMEOUT = 30.0


class _Channel:
    """What both transports share: a session, its bounded backlog, decoding.

    ``peer`` (e.g. ``tcp4:127.0.0.1:40312``) is set by Autobahn's protocols.
    Everything sent goes through :meth:`send` and the
    :class:`~broker.router.backpressure.OutboundQueue`.
    """

    session = None
    queue = None
    opening_deadline = None   # a DelayedCall that closes the connection unless cancelled

    def _open_session(self, router, limits):
        self.queue = OutboundQueue(
            lambda msg: encode(self._serializer, msg), self._write, self._output_exceeded,
            coalesce_above=limits.coalesce_above, gap_above=limits.gap_above,
            close_above=limits.max_output, max_message=self._max_message(),
            policy=router.backlog_policy)
        self.queue.attach(self.transport)
        self.session = router.new_session(self)
        self._cancel_deadline()
        self.opening_deadline = self.factory.reactor.callLater(OPENING_TIMEOUT, self._not_joined)

    def _not_joined(self):
        self.opening_deadline = None
        if self.session is not None and self.session.state != "joined":
            _log.info("closing {peer}: it did not join a realm within {seconds:g} s",
                      peer=self.peer, seconds=OPENING_TIMEOUT)
            self._lost()
            self.transport.abortConnection()

    def _cancel_deadline(self):
        if self.opening_deadline is not None and self.opening_deadline.active():
            self.opening_deadline.cancel()
        self.opening_deadline = None

    def send(self, msg):
        self.queue.send(msg)

    def _deliver(self, payload, is_binary=None):
        session = self.session
        try:
            items = decode(self._serializer, payload, is_binary)
        except ProtocolViolation as e:
            return session.protocol_violation(str(e))
        for item in items:
            if type(item) is InvalidRequestUri:
                session.bad_request(item.request_type, item.request, item.reason, item.answer)
            else:
                session.message_received(item)
            if session.state == "closed":
                return

    def _output_exceeded(self, queued):
        _log.warn(
            "closing session {session} ({peer}): {queued} bytes of output are waiting "
            "for a peer that does not read (limit {limit} bytes)",
            session=self.session.id if self.session else None,
            peer=self.peer, queued=queued, limit=self.queue.close_above,
            reason=errors.OUTPUT_LIMIT_EXCEEDED,
        )
        self._lost()
        self.transport.abortConnection()

    def _lost(self):
        self._cancel_deadline()
        if self.session is not None:
            session, self.session = self.session, None
            session.connection_lost()


# -- WebSocket ------------------------------------------------------------------

class _JsonEncoder(json.JSONEncoder):
    """Autobahn's JSON conventions: binary as a NUL-prefixed base64 string, Decimal as text."""

    def default(self, obj):
        if isinstance(obj, bytes):
            return "\x00" + base64.b64encode(obj).decode("ascii")
        if isinstance(obj, decimal.Decimal):
            return str(obj)
        return super().default(obj)


class StrictJsonObjectSerializer(JsonObjectSerializer):
    """Autobahn's JSON, refusing NaN and ±Infinity (which JSON has no way to write).

    A MessagePack or CBOR peer may send them; for a JSON peer such a message is
    then one it cannot receive (``invalid_payload`` for a call, an event dropped
    for that peer and logged), as for any value its serializer cannot represent.
    """

    #: one encoder for every message (json.dumps would build one per call)
    _encoder = _JsonEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def serialize(self, obj):
        return self._encoder.encode(obj).encode("utf-8")


def strict_json():
    """A JsonSerializer that refuses NaN and ±Infinity."""
    serializer = JsonSerializer()
    serializer._serializer = StrictJsonObjectSerializer()
    return serializer


# One serializer object per format, shared by every connection: Autobahn caches
# a message's bytes per serializer object, so an EVENT fanned out to many
# subscribers is encoded once per format, not once per subscriber.
WEBSOCKET_SERIALIZERS = {
    "wamp.2.json": strict_json(),
    "wamp.2.msgpack": MsgPackSerializer(),
    "wamp.2.cbor": CBORSerializer(),
}


def origin_allowed(origin, host, allowed):
    """True if a WebSocket handshake's ``Origin`` may connect.

    No Origin header (non-browser clients) is allowed; ``*`` in *allowed*
    allows every origin; otherwise the origin must be listed, or be the
    service's own (its host:port is the request's Host header).
    """
    if not origin:
        return True
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == (host or "").lower()


class WampWebSocketProtocol(_Channel, WebSocketServerProtocol):
    """WAMP over one WebSocket connection."""

    def onConnect(self, request):
        host = request.headers.get("host", "")
        if not origin_allowed(request.origin, host, self.factory.allowed_origins):
            _log.warn("refused WebSocket from origin {origin}", origin=request.origin)
            raise ConnectionDeny(
                403, f"origin {request.origin!r} is not allowed (see --allowed-origin)"
            )
        for subprotocol in request.protocols:
            if subprotocol in WEBSOCKET_SERIALIZERS:
                self._serializer = WEBSOCKET_SERIALIZERS[subprotocol]
                return subprotocol
        raise ConnectionDeny(
            400,
            f"no supported WAMP subprotocol among {request.protocols}; "
            f"this router speaks {sorted(WEBSOCKET_SERIALIZERS)}",
        )

    def onOpen(self):
        self._open_session(self.factory.router, self.factory.limits)

    def _max_message(self):
        return self.factory.maxMessagePayloadSize or None

    def onMessage(self, payload, isBinary):
        if self.session is not None:
            self._deliver(payload, isBinary)

    def onClose(self, wasClean, code, reason):
        self._lost()

    def _write(self, payload):
        self.sendMessage(payload, self._serializer._serializer.BINARY)

    def sendData(self, data, sync=False, chopsize=None):
        """Autobahn's, minus a debug log whose arguments it formats on every frame.

        (About a tenth of the service's time in a fan-out; the traffic
        counters Autobahn keeps are kept here too.)
        """
        if sync or chopsize or self.send_queue or self.state != self.STATE_OPEN:
            return super().sendData(data, sync, chopsize)
        self.transport.write(data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)

    def close(self):
        self.session = None
        self.sendClose(1000)


class WampWebSocketFactory(WebSocketServerFactory):
    """Builds :class:`WampWebSocketProtocol` for a router."""

    protocol = WampWebSocketProtocol

    def __init__(self, router, allowed_origins=(), max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
                 limits=None, *, reactor):
        super().__init__(protocols=list(WEBSOCKET_SERIALIZERS), reactor=reactor)
        self._batched_timer = ReactorTimers(reactor)
        self.router = router
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}
        self.limits = limits or OutputLimits()
        self.setProtocolOptions(
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            autoPingInterval=30,
            autoPingTimeout=60,
        )


# -- RawSocket --------------------------------------------------------------------


class WampRawSocketProtocol(_Channel, WampRawSocketServerProtocol):
    """WAMP over one RawSocket connection (after Autobahn's opening handshake).

    Frames are read by :class:`~broker.rawsocket_frames.FrameReader` (not
    Autobahn's, which refuses PING and PONG); PINGs are answered by
    :class:`~broker.rawsocket_frames.PongAnswers`.
    """

    frames = None
    pongs = None

    def _on_handshake_complete(self):
        # Autobahn announced its limit rounded up to a power of two; a length
        # prefix holds at most 2**24 - 1
        self.frames = FrameReader(min(self.MAX_LENGTH, 2**24 - 1))
        self._open_session(self.factory.router, self.factory.limits)
        self.pongs = PongAnswers(self.queue, self.transport.write)
        self.pongs.attach(self.transport)

    def _max_message(self):
        return self._max_len_send

    def dataReceived(self, data):
        if self.frames is None:
            return super().dataReceived(data)   # the handshake (Autobahn's)
        try:
            for kind, payload in self.frames.feed(data):
                if self.session is None:
                    return
                if kind == MESSAGE:
                    self._deliver(payload)
                elif kind == PING:
                    self.pongs.ping(payload)
        except FrameRefused as refusal:
            if self.session is not None:
                self.session.protocol_violation(str(refusal))
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self._lost()

    def _write(self, payload):
        if len(payload) > self._max_len_send:
            _log.warn(
                "closing session {session}: a {size}-byte message exceeds the "
                "{limit} bytes its RawSocket handshake accepts",
                session=self.session.id if self.session else None,
                size=len(payload), limit=self._max_len_send,
            )
            self._lost()
            return self.transport.loseConnection()
        self.transport.write(frame(MESSAGE, payload))

    def close(self):
        self.session = None
        self.transport.loseConnection()


class WampRawSocketFactory(WampRawSocketServerFactory):
    """Builds :class:`WampRawSocketProtocol` for a router; its timers run on *reactor*."""

    protocol = WampRawSocketProtocol

    def __init__(self, router, max_message_size=DEFAULT_MAX_MESSAGE_SIZE, limits=None, *,
                 reactor):
        super().__init__(lambda: None, [strict_json(), MsgPackSerializer()])
        self.router = router
        self.reactor = reactor
        self.limits = limits or OutputLimits()
        self.setProtocolOptions(maxMessagePayloadSize=min(max_message_size, 2**24))


# -- one port for both ------------------------------------------------------------


class TransportSniffer(Protocol):
    """Looks at a connection's first byte and hands it to RawSocket or HTTP.

    A connection that sends nothing within ``OPENING_TIMEOUT`` seconds is
    closed; a RawSocket one has until then to finish its handshake too (HTTP
    has its own idle timeout, WebSocket its opening handshake timeout).
    """

    def __init__(self, factory, addr):
        self._factory, self._addr = factory, addr
        self._deadline = None

    def connectionMade(self):
        self._deadline = self._factory.clock.callLater(OPENING_TIMEOUT, self._silent)

    def _silent(self):
        _log.info("closing {peer}: no transport opened within {seconds:g} s",
                  peer=self.transport.getPeer(), seconds=OPENING_TIMEOUT)
        self.transport.abortConnection()

    def connectionLost(self, reason):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()

    def dataReceived(self, data):
        chosen = self._factory.rawsocket if data[:1] == b"\x7f" else self._factory.web
        protocol = chosen.buildProtocol(self._addr)
        if protocol is None:
            return self.transport.loseConnection()
        if chosen is self._factory.rawsocket:
            protocol.opening_deadline = self._deadline   # until its handshake is done
        else:
            self._deadline.cancel()
        self._deadline = None
        transport = self.transport
        if isinstance(transport, ProtocolWrapper):
            transport.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(data)


class UniversalFactory(Factory):
    """One listening port serving HTTP (with WebSocket at ``/ws``) and RawSocket.

    *clock* runs the opening deadline; give the same reactor to *web* (the
    ``Site``) and *rawsocket*, so no timer lands on the global reactor.
    """

    def __init__(self, web, rawsocket, clock):
        self.web = web
        self.rawsocket = rawsocket
        self.clock = clock

    def startFactory(self):
        self.web.doStart()
        self.rawsocket.doStart()

    def stopFactory(self):
        self.web.doStop()
        self.rawsocket.doStop()

    def buildProtocol(self, addr):
        return TransportSniffer(self, addr)
