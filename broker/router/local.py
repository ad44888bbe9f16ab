"""Attach an in-process Autobahn ``ApplicationSession`` to the router, without a socket.

The kernel host is a WAMP session like any other, but it lives in the
router's process: messages pass between it and its
:class:`~broker.router.session.RouterSession` as objects, with no
serialization. The same session class joins an external router over a
WebSocket instead (``--router``), which is why it is an ordinary
``ApplicationSession``.

A local session's identity is given by the service (:func:`attach`), not
negotiated: that is how the kernel host gets the ``webkernel_host`` role,
which no network client can obtain.
"""

from autobahn.wamp import message
from autobahn.wamp.exception import TransportLost
from autobahn.wamp.types import TransportDetails
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from broker import errors
from broker.router.session import RouterSession

_log = Logger()


class _NoSerializer:
    """Autobahn's session reads its transport's serializer id; there is none here."""

    SERIALIZER_ID = "local"


class LocalTransport:
    """The application session's side: Autobahn's ``ITransport``.

    Messages to the router are handed over at once. Messages from the router
    are delivered on the next turn of the clock (``callLater(0)``), in order,
    in one batch: Autobahn's session updates its state *after* a send
    returns, so it must not see the router's answer inside that send.
    """

    _serializer = _NoSerializer()

    def __init__(self, app_session, clock):
        self._app = app_session
        self._clock = clock
        self._router_side = None
        self._pending = []
        self._scheduled = None
        self._closing = False
        self.transport_details = TransportDetails(
            channel_type=TransportDetails.CHANNEL_TYPE_FUNCTION, peer="local")
        self.is_closed = Deferred()

    def send(self, msg):
        if self._router_side is None:
            if self._closing:
                return  # e.g. the GOODBYE reply to a router that already closed
            raise TransportLost()
        self._router_side.session.message_received(msg)

    def isOpen(self):
        return self._router_side is not None

    def close(self):
        router_side, self._router_side = self._router_side, None
        if router_side is not None:
            router_side.session.connection_lost()
            self._closing = True
            self._schedule()

    abort = close

    def deliver(self, msg):
        """Queue a message from the router for the application session."""
        self._pending.append(msg)
        self._schedule()

    def router_closed(self):
        """The router closed the session: tell the application after what is pending."""
        self._router_side = None
        self._closing = True
        self._schedule()

    def _schedule(self):
        if self._scheduled is None:
            self._scheduled = self._clock.callLater(0, self._flush)

    def _flush(self):
        self._scheduled = None
        pending, self._pending = self._pending, []
        for msg in pending:
            try:
                self._app.onMessage(msg)
            except Exception as e:  # the rest of the batch is still delivered
                self._refused(msg, e)
        if self._closing and not self._pending:
            self._closing = False
            if not self.is_closed.called:
                self.is_closed.callback(self)
            self._app.onClose(True)

    def _refused(self, msg, exception):
        """The application failed on *msg*: log it, and answer it if it was an INVOCATION.

        Autobahn raises before it invokes anything when the call's keyword
        arguments clash with its own parameters (``self``, ``fun``): that
        call is answered ``wamp.error.invalid_argument`` instead of never.
        """
        bad_arguments = type(msg) is message.Invocation and isinstance(exception, TypeError)
        if bad_arguments:
            _log.info("refused an INVOCATION Autobahn cannot make: {why}", why=exception)
        else:
            _log.failure("the in-process session failed on {msg}", msg=type(msg).__name__.upper())
        if type(msg) is not message.Invocation or self._router_side is None:
            return
        if bad_arguments:
            uri, text = errors.INVALID_ARGUMENT, (
                f"the procedure cannot be called with these arguments (keyword arguments "
                f"named self or fun are not possible here): {exception}")
        else:
            uri, text = errors.RUNTIME_ERROR, "the service failed on this call (it is logged)"
        self._router_side.session.message_received(message.Error(
            message.Invocation.MESSAGE_TYPE, msg.request, uri, args=[text]))


class LocalChannel:
    """The router's side: a channel that hands messages to the application session."""

    peer = "local"

    def __init__(self, transport):
        self._transport = transport
        self.session = None

    def send(self, msg):
        self._transport.deliver(msg)

    def close(self):
        if self._transport._router_side is self:
            self._transport.router_closed()


def attach(router, app_session, principal, clock):
    """Connect *app_session* to *router* in-process, as *principal*.

    The application session then joins (it sends HELLO from ``onConnect``
    as usual) and is welcomed as *principal* whatever it asks for.
    """
    transport = LocalTransport(app_session, clock)
    channel = LocalChannel(transport)
    channel.session = RouterSession(router, channel, principal=principal)
    transport._router_side = channel
    app_session.onOpen(transport)
    return transport


def attacher(router, clock):
    """``attach(app_session, principal)`` for *router*: what the wiring hands each service.

    A service that runs an in-process session is given this function, so it
    knows nothing of the router but that it can attach a session to it.
    """
    return lambda app_session, principal: attach(router, app_session, principal, clock)
