"""The router's side of one WAMP session: handshake, authentication, lifecycle.

A :class:`RouterSession` owns only per-connection state: where the opening
handshake is, who the peer is once authenticated, its authorization cache and
its outgoing request ids. Everything a joined session sends is handed to its
realm; everything sent to it goes through :meth:`RouterSession.send`, the one
place output leaves the router core for a channel.

A *channel* is anything with ``send(msg)``, ``close()`` and ``peer``: a
WebSocket or RawSocket connection, or an in-memory pair in tests.
"""

from autobahn.util import id as new_id
from autobahn.wamp import message
from twisted.logger import Logger

from broker import errors
from broker.auth import AuthenticationFailed, Principal
from broker.router.authorizations import AuthorizationCache
from broker.router.limits import UNLIMITED

# client -> router messages allowed before the session has joined
_HANDSHAKE = (message.Hello, message.Authenticate, message.Abort)


class RouterSession:
    """One WAMP session as the router sees it."""

    log = Logger()

    def __init__(self, router, channel, principal=None):
        self.router = router
        #: set for in-process sessions whose identity the service decides
        self._preset_principal = principal
        #: what it may hold (the service's own in-process sessions are not bounded here)
        self.limits = router.session_limits if principal is None else UNLIMITED
        self.channel = channel
        self.id = None
        self.realm = None
        self.authid = self.authrole = self.authmethod = self.authprovider = None
        self.authextra = None
        self.roles = {}
        self.authorizations = AuthorizationCache()
        self.state = "opening"  # opening -> challenged -> joined -> closed
        self._authenticator = None
        self._pending_realm = None
        self._hello = None
        self._request_id = 0

    # -- what the router core uses -------------------------------------------

    def send(self, msg):
        """Send a message to the peer (dropped once the session is closed)."""
        if self.state != "closed":
            self.channel.send(msg)

    def next_request_id(self):
        """The next id for a request this router makes of the peer (INVOCATION)."""
        self._request_id = self._request_id + 1 if self._request_id < 2**53 else 1
        return self._request_id

    def supports(self, role, feature):
        """True if the peer announced *feature* for *role* in its HELLO."""
        features = self.roles.get(role)
        return bool(features is not None and getattr(features, feature, None))

    def details(self):
        """The session as the authorizer and the meta API describe it."""
        return {
            "session": self.id,
            "authid": self.authid,
            "authrole": self.authrole,
            "authmethod": self.authmethod,
            "authprovider": self.authprovider,
            "authextra": self.authextra,
            "transport": {"peer": self.channel.peer},
        }

    # -- what the channel calls ----------------------------------------------

    def message_received(self, msg):
        """Handle one parsed message from the peer."""
        try:
            if self.state == "joined":
                self._joined_message(msg)
            elif self.state != "closed":
                self._handshake_message(msg)
        except errors.ProtocolViolation as e:
            self.abort(errors.PROTOCOL_VIOLATION, str(e))

    def bad_request(self, request_type, request, reason, answer=True):
        """A request whose URI broke the rules: ERROR (if it wants an answer); the session stays."""
        if self.state != "joined":
            return self.abort(errors.PROTOCOL_VIOLATION, reason)
        if not answer:  # a PUBLISH without acknowledge
            return self.log.info("dropped a publication of session {session}: {uri}: {text}",
                                 session=self.id, uri=errors.INVALID_URI, text=reason)
        self.send(message.Error(request_type, request, errors.INVALID_URI, args=[reason]))

    def protocol_violation(self, reason):
        """The peer sent something that is not WAMP: ABORT and close."""
        self.abort(errors.PROTOCOL_VIOLATION, reason)

    def connection_lost(self):
        """The channel is gone: leave the realm, free everything."""
        if self.state == "joined":
            self.realm.leave(self)
        self.state = "closed"

    def abort(self, reason, text):
        """Send ABORT with a reason URI and a message for a person, then close."""
        if self.state == "closed":
            return
        self.log.info(
            "closing session {session} ({peer}): {reason}: {text}",
            session=self.id, peer=self.channel.peer, reason=reason, text=text,
        )
        self.send(message.Abort(reason, message=text))
        self._close()

    def goodbye(self, reason, text):
        """Close a joined session from the router's side (GOODBYE), else ABORT."""
        if self.state != "joined":
            return self.abort(reason, text)
        self.send(message.Goodbye(reason, message=text))
        self._close()

    def _close(self):
        if self.state == "joined":
            self.realm.leave(self)
        self.state = "closed"
        self.channel.close()

    # -- joined ------------------------------------------------------------------

    def _joined_message(self, msg):
        kind = type(msg)
        if kind is message.Goodbye:
            self.send(message.Goodbye(errors.GOODBYE_AND_OUT))
            return self._close()
        if kind in _HANDSHAKE:
            if kind is message.Abort:
                return self._close()
            raise errors.ProtocolViolation(f"{kind.__name__.upper()} in a joined session")
        self.realm.process(self, msg)

    # -- opening handshake -----------------------------------------------------

    def _handshake_message(self, msg):
        kind = type(msg)
        if kind is message.Abort:
            return self._close()
        if kind is message.Hello and self.state == "opening":
            return self._hello_received(msg)
        if kind is message.Authenticate and self.state == "challenged":
            return self._authenticate_received(msg)
        raise errors.ProtocolViolation(
            f"{kind.__name__.upper()} before the session has joined"
        )

    def _hello_received(self, hello):
        realm = self.router.realms.get(hello.realm)
        if realm is None:
            return self.abort(
                errors.NO_SUCH_REALM,
                f"no realm {hello.realm!r} on this router (it serves {sorted(self.router.realms)})",
            )
        if self._preset_principal is not None:
            self._pending_realm, self._hello = realm, hello
            return self._welcome(self._preset_principal)
        offered = hello.authmethods or ["anonymous"]
        authenticator = self.router.authenticator_for(offered)
        if authenticator is None:
            return self.abort(errors.NOT_AUTHORIZED, self.router.no_method_message(offered))
        self._pending_realm, self._hello, self._authenticator = realm, hello, authenticator
        details = {"authid": hello.authid, "authrole": hello.authrole,
                   "authextra": hello.authextra, "transport": {"peer": self.channel.peer}}
        self._guarded(lambda: authenticator.hello(realm.name, details))

    def _authenticate_received(self, msg):
        self._guarded(lambda: self._authenticator.authenticate(msg.signature, msg.extra))

    def _guarded(self, step):
        try:
            outcome = step()
        except AuthenticationFailed as e:
            return self.abort(e.uri, str(e))
        if isinstance(outcome, Principal):
            return self._welcome(outcome)
        self.state = "challenged"
        self.send(message.Challenge(self._authenticator.authmethod, outcome or {}))

    def _welcome(self, principal):
        self.id = new_id()
        self.realm = self._pending_realm
        self.roles = self._hello.roles or {}
        self.authid, self.authrole = principal.authid, principal.authrole
        self.authmethod, self.authprovider = principal.authmethod, principal.authprovider
        self.authextra = principal.authextra
        self._authenticator = self._pending_realm = self._hello = None
        self.state = "joined"
        self.send(
            message.Welcome(
                self.id,
                self.router.roles,
                realm=self.realm.name,
                authid=self.authid,
                authrole=self.authrole,
                authmethod=self.authmethod,
                authprovider=self.authprovider,
                authextra=self.authextra or None,
            )
        )
        if self.state == "joined":  # not if sending the WELCOME closed the connection
            self.realm.join(self)

    # Autobahn's transports log these two attributes of their session.
    @property
    def _session_id(self):
        return self.id

    @property
    def _authid(self):
        return self.authid
