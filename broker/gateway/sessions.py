"""Who a gateway request is, and the WAMP session it acts through.

A request signs in as the JSON-RPC endpoint's do, through the router's own
authenticators (the *authenticate* function the wiring hands over): HTTP
Basic is a WAMP ticket for that user name (multi-user mode: the user's
password); ``Authorization: token …`` (or ``?token=…``) is a ticket for the
authid ``jupyter`` (the service token); nothing joins anonymously as
``jupyter-anonymous`` where ``--anonymous`` allows it. The kernel host's
role is never granted. Each principal's REST requests share one session
attached in-process (through the *attach* function); each kernel WebSocket
gets a session of its own, so that the outputs of its own requests can be
told from the others' by the ``caller`` they carry.
"""

from autobahn.wamp import types
from twisted.internet import defer

from broker.client.asynchronous import AsyncClient
from broker.client.session import ClientSession
from broker.http_guard import peer_name, request_credentials, sign_in

TOKEN_AUTHID = "jupyter"
ANONYMOUS_AUTHID = "jupyter-anonymous"


class GatewaySessions:
    """Signs requests in and keeps one shared REST client per principal."""

    def __init__(self, attach, authenticate, realm, reactor, timeout):
        self.attach = attach
        self.authenticate = authenticate
        self.realm = realm
        self.reactor = reactor
        self.timeout = timeout
        self._shared = {}  # authid -> (Deferred of the AsyncClient, waiters)

    def principal_for(self, credentials, peer):
        """Who a request with *credentials* (Basic, a token or None) from *peer* is, or None."""
        return sign_in(self.authenticate, credentials, peer, TOKEN_AUTHID, ANONYMOUS_AUTHID)

    def principal(self, request):
        """Who *request* (a Twisted Web request) is from, or None."""
        credentials = request_credentials(request.uri, request.requestHeaders)
        return self.principal_for(credentials, peer_name(request.getClientAddress()))

    def admits(self, credentials, peer):
        """True if a request with *credentials* may send a body (asked at its headers)."""
        return self.principal_for(credentials, peer) is not None

    def open(self, principal):
        """A new session for *principal*: a Deferred of a joined :class:`ClientSession`."""
        session = ClientSession(types.ComponentConfig(realm=self.realm))
        self.attach(session, principal)
        return session.joined

    def client(self, principal):
        """The shared :class:`AsyncClient` of *principal* (a Deferred of it)."""
        entry = self._shared.get(principal.authid)
        if entry is None:
            entry = self._shared[principal.authid] = [None, []]
            self.open(principal).addCallbacks(
                lambda session: self._joined(principal.authid, entry, session),
                lambda failure: self._settle(principal.authid, entry, failure))
        if entry[0] is not None:
            return defer.succeed(entry[0])
        waiter = defer.Deferred()
        entry[1].append(waiter)
        return waiter

    def _joined(self, authid, entry, session):
        client = AsyncClient(session, self.reactor, self.timeout)
        session.when_closed().addCallback(lambda _: self._forget(authid, entry))
        entry[0] = client
        self._settle(authid, entry, client, keep=True)

    def _settle(self, authid, entry, result, keep=False):
        if not keep:
            self._forget(authid, entry)
        waiters, entry[1] = entry[1], []
        for waiter in waiters:
            waiter.callback(result)

    def _forget(self, authid, entry):
        if self._shared.get(authid) is entry:
            del self._shared[authid]
