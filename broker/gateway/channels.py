"""``/api/kernels/<id>/channels``: a kernel's Jupyter WebSocket, spoken over the kernel API.

:class:`KernelChannels` takes a checked request over (the REST side has
signed it in and found the kernel: an unknown one is 404 at the handshake)
and counts the open sockets per kernel. Each :class:`KernelSocket` has a
WAMP session of its own, attached in-process as the signed-in principal:

* requests from the client become calls (:mod:`broker.gateway.requests`):
  ``execute_request`` an ``execute`` with progress, whose outputs go back as
  iopub (and stdin) messages addressed to the client's request; the final
  result is the ``execute_reply``; ``complete``, ``inspect``,
  ``is_complete``, ``history``, ``kernel_info`` their calls, ``input_reply``
  ``input``, ``interrupt_request`` ``interrupt``, ``shutdown_request``
  ``restart`` or ``shutdown``;
* every other output of the kernel (other clients' executions, the notebook
  page's, a WAMP client's; status changes; death and restart) comes from the
  kernel's iopub topic, as Jupyter broadcasts iopub. Outputs of this
  socket's own executions are taken from its calls, not the topic (their
  ``caller`` is this socket's session); the ``status`` of its other
  requests (``kernel_info`` …) comes from the topic, addressed to the kernel's
  request id (jupyter_client waits for an iopub message after
  ``kernel_info_reply``).

Frames out are bounded (:mod:`broker.gateway.sendqueue`), never larger than
:data:`MAX_FRAME` (an output larger than that is replaced by a ``stream``
notice naming its ``seq``), pinged every 30 s. A socket opened with the
``session_id`` of an earlier one is first sent what that one missed
(:mod:`broker.gateway.replay`).
"""

import uuid

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.wamp import types
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import defer
from twisted.logger import Logger

from broker.client.asynchronous import AsyncClient
from broker.gateway import comms, requests, wire
from broker.gateway.ids import dashed
from broker.gateway.replay import SessionTrails
from broker.gateway.sendqueue import DEFAULT_LIMIT, SendQueue
from broker.kernel import uris
from broker.transport import origin_allowed

#: the largest frame sent or accepted: tornado's (so GatewayClient's) max_message_size
MAX_FRAME = 10 * 1024 * 1024
#: client messages held while the socket's session joins or a replay runs
MAX_HELD = 1000
#: live outputs held while a replay runs (past it the socket is closed, to be reopened)
MAX_HELD_OUTPUTS = 10000
#: outputs of the history asked for at once while replaying
REPLAY_PAGE = 500

#: close codes of a kernel WebSocket (WebSocket's 1000, or application codes 4000-4999)
CLOSE_BAD_MESSAGE = 4007   # a frame that is no Jupyter message
CLOSE_TOO_SLOW = 4008      # the client did not read: more than --max-output bytes waited
CLOSE_TOO_MANY = 4009      # too many messages held while the kernel connection was being made
CLOSE_FAILED = 4011        # the gateway could not subscribe to the kernel (it may be gone)

_log = Logger()


class KernelChannels:
    """Serves the kernel WebSockets and counts them per kernel."""

    def __init__(self, sessions, reactor, allowed_origins=(), max_queued=DEFAULT_LIMIT):
        self.sessions = sessions
        self.reactor = reactor
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}
        self.max_queued = max_queued
        self.trails = SessionTrails()
        self._open = {}
        self.factory = WebSocketServerFactory(reactor=reactor)
        self.factory.protocol = KernelSocket
        self.factory.channels = self
        self.factory.setProtocolOptions(maxMessagePayloadSize=MAX_FRAME,
                                        maxFramePayloadSize=MAX_FRAME,
                                        autoPingInterval=30, autoPingTimeout=60)
        self.resource = WebSocketResource(self.factory)
        self._next = None

    def connections(self, kernel_id):
        """How many gateway WebSockets are open on *kernel_id*."""
        return self._open.get(kernel_id, 0)

    def take_over(self, request, principal, kernel_id):
        """Hand *request* (a handshake for *kernel_id*, by *principal*) to a new :class:`KernelSocket`."""
        session_id = (request.args.get(b"session_id") or [b""])[0].decode("utf-8", "replace")[:256]
        self._next = (principal, kernel_id, session_id)
        try:
            answer = self.resource.render(request)
        finally:
            self._next = None
        if isinstance(answer, bytes):  # not an upgradable connection
            request.write(answer)
            request.finish()

    def adopt(self, socket):
        """Give a socket just built its context."""
        socket.channels = self
        socket.principal, socket.kernel_id, socket.session_id = self._next

    def opened(self, kernel_id):
        self._open[kernel_id] = self._open.get(kernel_id, 0) + 1

    def closed(self, kernel_id):
        left = self._open.get(kernel_id, 0) - 1
        if left > 0:
            self._open[kernel_id] = left
        else:
            self._open.pop(kernel_id, None)


class KernelSocket(WebSocketServerProtocol):
    """One client's WebSocket to one kernel (see the module docstring)."""

    channels = principal = kernel_id = session_id = None
    v1 = False
    client = None      # the AsyncClient of this socket's own session, once joined
    live = False

    def onConnect(self, request):
        self.factory_channels().adopt(self)
        if not origin_allowed(request.origin, request.headers.get("host", ""),
                              self.channels.allowed_origins):
            raise ConnectionDeny(403, f"origin {request.origin!r} is not allowed (see --allowed-origin)")
        if wire.V1_PROTOCOL in request.protocols:
            self.v1 = True
            return wire.V1_PROTOCOL
        return None

    def factory_channels(self):
        return self.factory.channels

    def onOpen(self):
        self.live = True
        self.jupyter_session = uuid.uuid4().hex
        self.held = []          # client messages waiting for the session (and the replay)
        self.live_held = None   # kernel outputs waiting for the replay to end
        self.trail = self.channels.trails.get(self.principal.authid, self.kernel_id,
                                             self.session_id)
        self.queue = SendQueue(self._write, self._overflow, self.channels.max_queued)
        try:
            self.transport.unregisterProducer()   # Twisted Web's channel, before the takeover
        except RuntimeError:
            pass
        self.transport.registerProducer(self.queue, True)
        self.channels.opened(self.kernel_id)
        joined = self.channels.sessions.open(self.principal)
        joined.addCallback(self._joined).addErrback(self._failed_to_start)

    @defer.inlineCallbacks
    def _joined(self, session):
        self.wamp = session
        if not self.live:
            return session.leave()
        self.client = AsyncClient(session, self.channels.reactor, timeout=0)
        self.live_held = [] if self.trail.last_seq is not None else None
        yield session.subscribe(self._topic_output, uris.kernel_topic(self.kernel_id, "iopub"),
                                options=types.SubscribeOptions(match="prefix"))
        yield session.subscribe(self._kernel_event, uris.KERNELS_EVENTS)
        if self.live_held is not None:
            yield self._replay()
        elif self.trail.last_seq is None:   # from here on, what this session_id sees is noted
            page = yield self.client.call(uris.kernel_procedure(self.kernel_id, "outputs"),
                                          since=0, limit=0)
            self.trail.saw(page["last_seq"])
        held, self.held = self.held, None
        for msg in held:
            self._dispatch(msg)

    def _failed_to_start(self, failure):
        _log.failure("kernel WebSocket for {kernel_id} could not start", failure,
                     kernel_id=self.kernel_id)
        self._close(CLOSE_FAILED, "the gateway could not follow this kernel")

    # -- from the client -------------------------------------------------------------------

    def onMessage(self, payload, isBinary):
        try:
            msg = wire.decode_v1(payload) if self.v1 else wire.decode_legacy(payload)
        except wire.BadMessage as e:
            return self._close(CLOSE_BAD_MESSAGE, str(e)[:120])
        if self.held is not None:
            if len(self.held) >= MAX_HELD:
                return self._close(CLOSE_TOO_MANY, "too many messages before the kernel connection was ready")
            return self.held.append(msg)
        self._dispatch(msg)

    def _dispatch(self, msg):
        if self.live:
            requests.handle(self, msg)

    # -- to the client ---------------------------------------------------------------------

    def send_jupyter(self, channel, msg_type, content, parent, metadata=None, buffers=None):
        """Send one Jupyter message to the client."""
        msg = wire.make(channel, msg_type, content, parent, self.jupyter_session, metadata, buffers)
        frame = wire.encode_v1(msg) if self.v1 else wire.encode_legacy(msg)
        if len(frame) > MAX_FRAME:
            return False
        self.queue.send(frame, self.v1)
        return True

    def send_output(self, output, parent):
        """Send an output message of the kernel API as the Jupyter message it was."""
        msg_type = output.get("msg_type")
        if msg_type == "gap":   # never on a topic to an in-process session; kept for safety
            return self._notice(output, parent, "some outputs were not delivered")
        channel = "stdin" if msg_type == "input_request" else "iopub"
        content = comms.to_client(msg_type, output.get("content") or {}, self.trail)
        sent = self.send_jupyter(channel, msg_type, content, parent,
                                 output.get("metadata"), output.get("buffers"))
        if not sent:
            self._notice(output, parent, f"an output of type {msg_type} was larger than "
                                         f"{MAX_FRAME} bytes")
        self.trail.saw(output.get("seq"))

    def _notice(self, output, parent, what):
        seq = output.get("seq", output.get("from_seq"))
        text = (f"[webkernel: {what}; it is in the kernel's history at seq {seq}: "
                f"webkernel.kernel.{self.kernel_id}.outputs]\n")
        self.send_jupyter("iopub", "stream", {"name": "stderr", "text": text}, parent)

    def _write(self, frame, is_binary):
        if self.live:
            self.sendMessage(frame, isBinary=is_binary)

    def _overflow(self, queued):
        _log.warn("closing the kernel WebSocket of {authid} on {kernel_id}: {queued} bytes wait "
                  "for a client that does not read (limit {limit})", authid=self.principal.authid,
                  kernel_id=self.kernel_id, queued=queued, limit=self.queue.limit)
        self._close(CLOSE_TOO_SLOW, "too slow: reconnect with the same session_id to get what you missed")

    # -- the kernel's topics --------------------------------------------------------------

    def _topic_output(self, *args, **output):
        if not self.live:
            return
        caller = output.get("caller") or {}
        mine = self.client is not None and caller.get("session") == self.wamp._session_id
        if mine and (output.get("msg_type") != "status"
                     or output.get("parent_msg_id") in self.trail.parents):
            # an execution's outputs come from its call's progress, in order, addressed
            # to the client's request: the topic may overtake that progress, and an idle
            # from here could then come before the last output (a client stops at idle)
            return
        if self.live_held is not None:
            if len(self.live_held) >= MAX_HELD_OUTPUTS:
                return self._close(CLOSE_TOO_MANY, "too many outputs while replaying: reconnect")
            return self.live_held.append(output)
        self.send_output(output, self.trail.parent_of(output.get("parent_msg_id")))

    def _kernel_event(self, *args, **event):
        kernel = event.get("kernel") or {}
        if kernel.get("id") == self.kernel_id and event.get("event") == "stopped":
            self._close(1000, "the kernel was shut down")

    @defer.inlineCallbacks
    def _replay(self):
        """Send what this session_id missed, then the outputs that came meanwhile."""
        since = self.trail.last_seq
        while self.live:
            page = yield self.client.call(uris.kernel_procedure(self.kernel_id, "outputs"),
                                          since=since, limit=REPLAY_PAGE)
            for output in page["outputs"]:
                self.send_output(output, self.trail.parent_of(output.get("parent_msg_id")))
            if not page["outputs"] or page["outputs"][-1]["seq"] >= page["last_seq"]:
                break
            since = page["outputs"][-1]["seq"]
        held, self.live_held = self.live_held, None
        for output in held or ():
            if output.get("seq") is None or output["seq"] > (self.trail.last_seq or 0):
                self.send_output(output, self.trail.parent_of(output.get("parent_msg_id")))
        for kernel_msg_id in list(self.trail.unanswered):
            requests.answer_missed(self, kernel_msg_id)

    # -- closing --------------------------------------------------------------------------

    def _close(self, code, reason):
        if self.live:
            self.sendClose(code, reason)

    def onClose(self, wasClean, code, reason):
        if not self.live:
            return
        self.live = False
        self.channels.closed(self.kernel_id)
        try:
            self.transport.unregisterProducer()
        except (RuntimeError, AttributeError):
            pass
        if self.client is not None:
            self.wamp.leave()

    def __repr__(self):
        return f"<KernelSocket {dashed(self.kernel_id or '')} {self.principal and self.principal.authid}>"
