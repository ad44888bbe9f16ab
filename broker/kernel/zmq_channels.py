"""The ZeroMQ sockets of one kernel, on the Twisted reactor through txzmq.

This is the only module of webkernel that imports ``txzmq`` or ``zmq``.
:class:`KernelChannels` connects shell, control and stdin (DEALER), iopub
(SUB, subscribed to everything) and the heartbeat to the ports of a
connection-info dict. The heartbeat is a DEALER, not Jupyter's REQ: the
kernel's ROUTER echoes whatever it gets, and a DEALER has no send/receive
lockstep for a lost echo to wedge, so each ping carries its own payload. Every frame
is built, signed, split and verified by the ``jupyter_client`` Session given
to it; a message that fails verification is logged and dropped.

txzmq notes: ``ZmqSubConnection`` splits a message into (tag, body) and
mangles Jupyter's 7+ frames, so iopub uses :class:`JupyterConnection` (the
raw multipart ``messageReceived``) with SUBSCRIBE set here. ``ZmqConnection.send``
schedules its follow-up read on the *global* reactor; ours uses the factory's.
Importing ``txzmq`` imports the global reactor (its modules do so at top level).

Readiness: besides Jupyter Server's shell + iopub handshake (``nudge``), the
stdin socket must have finished its ZeroMQ handshake: the kernel sends
``input_request`` to the identity of the shell request through its stdin
ROUTER, which silently drops messages for identities it has not met yet, and
a kernel binds stdin after shell (our first connect there is often refused
and retried). A socket monitor on stdin reports the handshake; it watches
before the socket connects (to a kernel already running, the handshake can
be over before a monitor started just after the connect, which never hears of it).
"""

import hmac
import itertools
from collections import deque

import txzmq
import zmq
from jupyter_client.session import Session
from twisted.internet import defer
from twisted.logger import Logger
from zmq.utils.monitor import parse_monitor_message
from zope.interface import implementer

from broker.kernel.errors import ChannelsClosed, UnknownChannel, UnsignedSession
from broker.kernel.interfaces import REQUEST_CHANNELS, IKernelChannels
from broker.kernel.nudge import IOPubNudge

#: the readiness condition the stdin socket's monitor reports
STDIN_HANDSHAKE = "handshake on stdin"

#: milliseconds before ZeroMQ connects again after a refused connect; doubled each time up to the max
RECONNECT_FIRST_MS = 5
RECONNECT_MAX_MS = 100

_NOBLOCK = int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_log = Logger()

_SOCKET_TYPES = {"shell": zmq.DEALER, "control": zmq.DEALER, "stdin": zmq.DEALER,
                 "iopub": zmq.SUB, "hb": zmq.DEALER}


#: ZeroMQ sockets the channels of one kernel open: shell, control, stdin, iopub,
#: heartbeat, and the stdin monitor's pair (libzmq's end and ours)
SOCKETS_PER_KERNEL = 7
#: sockets of the context kept beyond the kernels' (a kernel being replaced, a restart)
SOCKET_RESERVE = 64


def sockets_needed(kernels):
    """The ZeroMQ context's socket limit for *kernels* kernels' channels at once."""
    return SOCKET_RESERVE + SOCKETS_PER_KERNEL * kernels


def make_zmq_factory(reactor, kernels=None):
    """A ``txzmq.ZmqFactory`` (one ZeroMQ context) whose connections use *reactor*.

    With *kernels*, the context may open the sockets of that many kernels'
    channels: ZeroMQ's default ``MAX_SOCKETS`` (1023) would refuse new sockets
    ("Too many open files") past about 140 kernels. The limit is capped at
    what this libzmq allows (``SOCKET_LIMIT``), and that is logged.
    """
    factory = txzmq.ZmqFactory()
    factory.reactor = reactor
    if kernels is not None:
        wanted = sockets_needed(kernels)
        ceiling = factory.context.get(zmq.SOCKET_LIMIT)
        if wanted > ceiling:
            _log.warn("{kernels} kernels need {wanted} ZeroMQ sockets but this libzmq allows "
                      "{ceiling}: about {most} kernels fit", kernels=kernels, wanted=wanted,
                      ceiling=ceiling, most=(ceiling - SOCKET_RESERVE) // SOCKETS_PER_KERNEL)
        factory.context.set(zmq.MAX_SOCKETS, max(min(wanted, ceiling),
                                                 factory.context.get(zmq.MAX_SOCKETS)))
    return factory


def socket_limit(factory):
    """The most sockets *factory*'s ZeroMQ context opens."""
    return factory.context.get(zmq.MAX_SOCKETS)


#: signatures of received kernel messages remembered per kernel, to refuse replays
#: (about 1.4 MB when full)
REPLAY_WINDOW = 8192


class VerifyingSession(Session):
    """jupyter_client's Session, minus parsing header dates on every received message.

    ``Session.deserialize`` turns the ``date`` of every header into a
    ``datetime``: about a tenth of the service's time while a kernel streams
    output, for dates webkernel never reads. Verification is unchanged: an
    unsigned, replayed or wrongly signed message is refused (``ValueError``)
    before anything in it is unpacked.

    Replays are caught by remembering the signatures of the ``REPLAY_WINDOW``
    most recent messages (the oldest is forgotten first, in constant time;
    jupyter_client sorts its whole memory to forget a random tenth when it is
    full, and keeps 65,536 by default, about 11 MB per kernel); only
    signatures that verified are remembered, so forged messages cannot push
    real ones out. The key is read once: it never changes after the session
    is made (:func:`session_for`).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._signer = self.auth            # an HMAC of the key, copied per message
        self._seen = self.digest_history    # signatures remembered, and in arrival order:
        self._seen_order = deque()

    def deserialize(self, msg_list, content=True, copy=True):
        if not copy:
            return super().deserialize(msg_list, content, copy)
        if len(msg_list) < 5:
            raise TypeError("malformed message: fewer than 5 frames")
        if self._signer is not None:
            self._verify(msg_list)
        unpack = self.unpack
        header = unpack(msg_list[1])
        return {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": unpack(msg_list[2]),
            "metadata": unpack(msg_list[3]),
            "content": unpack(msg_list[4]) if content else msg_list[4],
            "buffers": [memoryview(b) for b in msg_list[5:]],
        }

    def _verify(self, msg_list):
        signature = msg_list[0]
        if not signature:
            raise ValueError("Unsigned Message")
        if signature in self._seen:
            raise ValueError("Duplicate Signature (a replayed message)")
        digest = self._signer.copy()
        for frame in msg_list[1:5]:
            digest.update(frame)
        if not hmac.compare_digest(signature, digest.hexdigest().encode()):
            raise ValueError("Invalid Signature")
        self._remember(signature)

    def _remember(self, signature):
        self._seen.add(signature)
        self._seen_order.append(signature)
        if len(self._seen_order) > self.digest_history_size:
            self._seen.discard(self._seen_order.popleft())


def session_for(connection_info):
    """A Session signing with the key and scheme of *connection_info*."""
    key = connection_info["key"]
    return VerifyingSession(
        key=key.encode("ascii") if isinstance(key, str) else key,
        signature_scheme=connection_info.get("signature_scheme", "hmac-sha256"),
        digest_history_size=REPLAY_WINDOW,
    )


def channel_address(connection_info, channel):
    """The ZeroMQ address of *channel* ("shell", …, "hb") in *connection_info*."""
    transport, ip = connection_info["transport"], connection_info["ip"]
    port = connection_info[f"{channel}_port"]
    if transport == "tcp":
        return f"tcp://{ip}:{port}"
    return f"{transport}://{ip}-{port}"


class JupyterConnection(txzmq.ZmqConnection):
    """One socket handing each whole multipart message to *received(parts)*."""

    def __init__(self, factory, socket_type, address, received, identity=None):
        """Open a *socket_type* socket and connect it to *address*, unless that is None
        (then :meth:`connect` does, once the caller has set the socket up)."""
        self.socketType = socket_type
        self._received = received
        super().__init__(factory, identity=identity)
        # a kernel just started binds its ports some tens of milliseconds after it
        # exists, and our connect usually comes first: ZeroMQ's default is to try
        # again 100 ms after a refused connect. Try again sooner, backing off.
        self.socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_FIRST_MS)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
        if socket_type == zmq.SUB:
            # ZeroMQ's default receive high-water mark (1,000 messages) makes a SUB
            # socket drop messages silently when the reactor falls behind a burst:
            # lost output nobody could notice (Jupyter messages carry no sequence
            # numbers). The reactor drains this queue continuously, and output is
            # bounded after it (history, per-peer backlog), so it is unlimited here.
            self.socket.setsockopt(zmq.RCVHWM, 0)
            self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        if address is not None:
            self.connect(address)

    def connect(self, address):
        """Connect the socket to *address* (ZeroMQ connects, and reconnects, in the background)."""
        self.addEndpoints([txzmq.ZmqEndpoint(txzmq.ZmqEndpointType.connect, address)])
        self.doRead()  # the ZeroMQ fd is edge-triggered: drain after touching the socket

    def messageReceived(self, message):
        self._received(message)

    def doRead(self):
        """Receive every waiting message, each whole, and hand it on.

        txzmq's own loop asks ZeroMQ for ``EVENTS`` before each message and
        for ``RCVMORE`` after each frame (every answer an enum built in
        Python): a quarter of the service's time while a kernel streams
        output. Here the options are plain ints, and ``EVENTS`` is read once
        the socket says it has nothing more, which also re-arms its
        edge-triggered file descriptor. (ZeroMQ delivers a multipart message
        atomically: once its first frame is in, the rest are.)
        """
        if self.read_scheduled is not None:
            if not self.read_scheduled.called:
                self.read_scheduled.cancel()
            self.read_scheduled = None
        while self.factory is not None:  # None once disconnected
            socket = self.socket
            try:
                parts = [socket.recv(_NOBLOCK)]
                while socket.getsockopt(_RCVMORE):
                    parts.append(socket.recv(_NOBLOCK))
            except zmq.Again:
                if not socket.getsockopt(_EVENTS) & _POLLIN:
                    return
                continue
            try:
                self.messageReceived(parts)
            except Exception:
                _log.failure("a received ZeroMQ message could not be handled")

    def send(self, message):
        """Send a multipart message; check for input on the factory's reactor, not the global one."""
        for part in message[:-1]:
            self.socket.send(part, zmq.NOBLOCK | zmq.SNDMORE)
        self.socket.send(message[-1], zmq.NOBLOCK)
        if self.read_scheduled is None:
            self.read_scheduled = self.factory.reactor.callLater(0, self.doRead)


@implementer(IKernelChannels)
class KernelChannels:
    """Shell, control, stdin, iopub and heartbeat of one kernel, and one callback for what arrives."""

    log = Logger()

    def __init__(self, factory, connection_info, session, on_message, kernel_id=None):
        if not session.key:
            raise UnsignedSession("the Session has no key; kernel messages must be HMAC-signed")
        self.factory = factory
        self.clock = factory.reactor
        self.session = session
        self.on_message = on_message
        self.kernel_id = kernel_id
        self.closed = False
        self.dropped = 0
        self._nudges = []
        self._pings = {}
        self._ping_serial = itertools.count(1)
        self.stdin_connected = False
        self._connections = {}
        try:
            for channel in _SOCKET_TYPES:
                self._connections[channel] = self._connect(channel, connection_info)
            # watched before it connects: the handshake with a kernel already running (one
            # re-attached) can finish at once, and an event before the monitor is never told
            self._stdin_monitor = self._monitor_handshakes("stdin")
            self._connections["stdin"].connect(channel_address(connection_info, "stdin"))
        except Exception:
            for connection in self._connections.values():
                connection.shutdown()
            raise

    def _connect(self, channel, connection_info):
        # The kernel sends input_request on stdin to the identity that sent
        # the shell request: shell and stdin must share one identity.
        identity = self.session.bsession if channel in REQUEST_CHANNELS else None
        received = self._pong if channel == "hb" else (lambda parts: self._received(channel, parts))
        address = channel_address(connection_info, channel) if channel != "stdin" else None
        return JupyterConnection(self.factory, _SOCKET_TYPES[channel], address, received,
                                 identity=identity)

    def _monitor_handshakes(self, channel):
        address = f"inproc://webkernel-monitor-{id(self)}-{channel}"
        self._connections[channel].socket.monitor(address, zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self._connections[channel].doRead()
        return JupyterConnection(self.factory, zmq.PAIR, address, self._stdin_event)

    def _stdin_event(self, parts):
        if parse_monitor_message(parts)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.stdin_connected = True
            for nudge in self._nudges:
                nudge.condition_met(STDIN_HANDSHAKE)

    def send(self, channel, msg_type, content, metadata=None, parent=None, buffers=None):
        """Sign and send a *msg_type* message on *channel*; return the message dict."""
        if channel not in REQUEST_CHANNELS:
            raise UnknownChannel(f"cannot send on {channel!r}: requests go on {', '.join(REQUEST_CHANNELS)}")
        self._check_open()
        msg = self.session.msg(msg_type, content, parent=parent, metadata=metadata)
        frames = self.session.serialize(msg) + list(buffers or ())
        self._connections[channel].send(frames)
        return msg

    def _received(self, channel, parts):
        try:
            _idents, frames = self.session.feed_identities(parts, copy=True)
            msg = self.session.deserialize(frames, content=True, copy=True)
        except Exception as e:
            self.dropped += 1
            self.log.warn(
                "dropped a message from kernel {kernel_id} on {channel}: {error}",
                kernel_id=self.kernel_id, channel=channel, frames=len(parts), error=str(e)[:200],
            )
            return
        # A nudge's own replies are consumed; iopub messages reach on_message
        # before a nudge they complete fires.
        if channel != "iopub" and self._feed_nudges(channel, msg):
            return
        try:
            self.on_message(channel, msg)
        except Exception:
            self.log.failure("on_message failed for {msg_type} on {channel} of kernel {kernel_id}",
                             msg_type=msg["msg_type"], channel=channel, kernel_id=self.kernel_id)
        if channel == "iopub":
            self._feed_nudges(channel, msg)

    def _feed_nudges(self, channel, msg):
        """Show *msg* to the nudges; True if it answered one of their requests."""
        consumed = any([nudge.message_received(channel, msg) for nudge in self._nudges])
        self._nudges = [n for n in self._nudges if not n.done or n.request_ids]
        return consumed

    def nudge(self, timeout=30.0, interval=0.5, channel="shell"):
        """Send kernel_info_request until *channel* answers and iopub delivers; fire with the reply content.

        The Deferred also waits for the stdin socket's handshake; it fails
        with KernelNotReady after *timeout* seconds.
        """
        self._check_open()
        nudge = IOPubNudge(
            self.clock, lambda: self.send(channel, "kernel_info_request", {}),
            timeout=timeout, interval=interval, kernel_id=self.kernel_id,
            conditions=() if self.stdin_connected else (STDIN_HANDSHAKE,), channel=channel,
        )
        self._nudges.append(nudge)
        return nudge.start()

    def ping(self):
        """Send a heartbeat; the Deferred fires when the kernel echoes it."""
        self._check_open()
        payload = b"ping-%d" % next(self._ping_serial)
        d = defer.Deferred(lambda _d: self._pings.pop(payload, None))
        self._pings[payload] = d
        self._connections["hb"].send([payload])
        return d

    def _pong(self, parts):
        d = self._pings.pop(parts[-1], None) if parts else None
        if d is not None:
            d.callback(parts[-1])

    def close(self):
        """Close every socket; pending nudges and pings fail with ChannelsClosed."""
        if self.closed:
            return
        self.closed = True
        self._connections["stdin"].socket.disable_monitor()
        self._stdin_monitor.shutdown()
        for connection in self._connections.values():
            connection.shutdown()
        reason = ChannelsClosed(f"the channels of kernel {self.kernel_id} are closed")
        for nudge in self._nudges:
            nudge.fail(reason)
        pings, self._pings = self._pings, {}
        for d in pings.values():
            d.errback(ChannelsClosed(str(reason)))
        self._nudges = []

    def _check_open(self):
        if self.closed:
            raise ChannelsClosed(f"the channels of kernel {self.kernel_id} are closed")
