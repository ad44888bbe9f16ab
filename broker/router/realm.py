"""A realm: its joined sessions, its broker and dealer, and message dispatch.

``Realm.process(session, message)`` is the router core's single entry point
for a joined session's messages: it dispatches by message class to a small
handler on the :class:`~broker.router.broker.Broker` (pub/sub) or the
:class:`~broker.router.dealer.Dealer` (RPC). Authorization of every action
goes through :meth:`Realm.authorize`.
"""

from autobahn.wamp import message
from autobahn.wamp.role import RoleBrokerFeatures, RoleDealerFeatures
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from broker import errors
from broker.router.broker import Broker
from broker.router.dealer import Dealer
from broker.router.meta import MetaApi


def router_roles():
    """The roles and Advanced Profile features announced in WELCOME."""
    return {
        "broker": RoleBrokerFeatures(
            publisher_identification=True,
            pattern_based_subscription=True,
            session_meta_api=True,
            subscription_meta_api=True,
            subscriber_blackwhite_listing=True,
            publisher_exclusion=True,
        ),
        "dealer": RoleDealerFeatures(
            caller_identification=True,
            pattern_based_registration=True,
            session_meta_api=True,
            registration_meta_api=True,
            shared_registration=True,
            call_timeout=True,
            call_canceling=True,
            progressive_call_results=True,
        ),
    }


class Realm:
    """One WAMP realm: the sessions joined to it and what they observe."""

    log = Logger()

    def __init__(self, name, authorizer, clock):
        self.name = name
        self.authorizer = authorizer
        self.clock = clock
        self.sessions = {}
        self.broker = Broker(self)
        self.dealer = Dealer(self)
        self.meta = MetaApi(self)
        self._handlers = {
            message.Publish: self.broker.publish,
            message.Subscribe: self.broker.subscribe,
            message.Unsubscribe: self.broker.unsubscribe,
            message.Call: self.dealer.call,
            message.Cancel: self.dealer.cancel,
            message.Register: self.dealer.register,
            message.Unregister: self.dealer.unregister,
            message.Yield: self.dealer.yield_,
            message.Error: self._error,
        }

    # -- membership ---------------------------------------------------------

    def join(self, session):
        """Add a session that has been welcomed."""
        self.sessions[session.id] = session
        self.meta.session_joined(session)

    def leave(self, session):
        """Remove a session and everything it held; tell the others."""
        if self.sessions.pop(session.id, None) is None:
            return
        self.dealer.session_left(session)
        self.broker.session_left(session)
        self.meta.session_left(session)

    # -- dispatch -----------------------------------------------------------

    def process(self, session, msg):
        """Handle one message from a joined session."""
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise errors.ProtocolViolation(
                f"a client may not send {type(msg).__name__.upper()} in a joined session"
            )
        try:
            handler(session, msg)
        except errors.RouterError as e:
            self.send_error(session, msg, e)

    def _error(self, session, msg):
        if msg.request_type != message.Invocation.MESSAGE_TYPE:
            raise errors.ProtocolViolation(
                f"ERROR for request type {msg.request_type}: a client may only "
                "send ERROR in answer to an INVOCATION"
            )
        self.dealer.invocation_error(session, msg)

    def send_error(self, session, request, error):
        """Answer *request* with an ERROR built from a RouterError.

        A PUBLISH without ``acknowledge`` is not answered (the spec's rule: its
        publisher expects no reply, and Autobahn closes a session that gets
        one); the refusal is logged.
        """
        if type(request) is message.Publish and not request.acknowledge:
            self.log.info("dropped a publication of session {session}: {uri}: {text}",
                          session=session.id, uri=error.uri, text=error.message)
            return
        session.send(
            message.Error(
                request.MESSAGE_TYPE,
                request.request,
                error.uri,
                args=error.args_,
                kwargs=error.kwargs or None,
            )
        )

    # -- authorization ------------------------------------------------------

    def authorize(self, session, request, uri, action, options, proceed):
        """Ask the authorizer; call ``proceed(disclose)`` if allowed.

        A denial answers *request* with ``wamp.error.not_authorized``; an
        authorizer that raises answers it with
        ``wamp.error.authorization_failed`` (its exception is logged, never
        sent). Decisions the session keeps (:mod:`broker.router.authorizations`)
        skip the authorizer.
        """
        match = options.get("match", "exact")
        cached = session.authorizations.get(uri, action, match)
        if cached is not None:
            return self._decided(session, request, uri, action, cached, proceed)
        try:
            result = self.authorizer.authorize(session.details(), uri, action, options)
        except Exception:
            self.log.failure("authorizer failed for {action} on {uri}", action=action, uri=uri)
            return self._authorizer_failed(session, request, uri, action)
        if isinstance(result, Deferred):
            result.addCallbacks(
                lambda r: self._authorized(session, request, uri, action, match, r, proceed),
                lambda f: self._authorizer_failed(session, request, uri, action, f),
            )
            return None
        return self._authorized(session, request, uri, action, match, result, proceed)

    def _authorized(self, session, request, uri, action, match, result, proceed):
        decision = normalize_decision(result)
        if decision is None:
            self.log.error(
                "authorizer returned {result!r}; expected a bool or a dict", result=result
            )
            return self._authorizer_failed(session, request, uri, action)
        session.authorizations.keep(uri, action, match, decision)
        return self._decided(session, request, uri, action, decision, proceed)

    def _decided(self, session, request, uri, action, decision, proceed):
        if not decision["allow"]:
            msg = f"session {session.id} (authid {session.authid!r}, authrole {session.authrole!r}) is not authorized to {action} {uri!r}"
            self.send_error(session, request, errors.NotAuthorized(msg))
            return None
        try:
            return proceed(decision["disclose"])
        except errors.RouterError as e:
            self.send_error(session, request, e)

    def _authorizer_failed(self, session, request, uri, action, failure=None):
        if failure is not None:
            self.log.failure("authorizer failed for {action} on {uri}", failure, action=action, uri=uri)
        msg = f"the authorizer failed while deciding whether to allow {action} on {uri!r}"
        self.send_error(session, request, errors.AuthorizationFailed(msg))


def normalize_decision(result):
    """An authorizer's bool or dict as ``{allow, disclose, cache, namespace}``, or None."""
    if isinstance(result, bool):
        return {"allow": result, "disclose": False, "cache": False, "namespace": None}
    if isinstance(result, dict) and isinstance(result.get("allow"), bool):
        namespace = result.get("namespace")
        return {
            "allow": result["allow"],
            "disclose": bool(result.get("disclose", False)),
            "cache": bool(result.get("cache", False)),
            "namespace": namespace if isinstance(namespace, str) and namespace else None,
        }
    return None
