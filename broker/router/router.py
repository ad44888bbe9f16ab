"""The router: its realms, its authentication methods, and new sessions.

``Router`` is what the transports know: they ask it for a
:class:`~broker.router.session.RouterSession` per connection.
Authentication methods come from :class:`~broker.auth.IAuthenticatorFactory`
plugins (the ``plugins`` package), enabled by the service configuration.
"""

from twisted.plugin import getPlugins
from zope.interface.verify import verifyObject

from broker import errors
from broker.auth import AuthenticationFailed, IAuthenticatorFactory, Principal
from broker.backlog_policy import DeliverEverything, IBacklogPolicy
from broker.router.limits import SessionLimits
from broker.router.realm import Realm, router_roles
from broker.router.session import RouterSession


def authenticator_factories(config, package=None):
    """The enabled authenticator factories, by authmethod, found as plugins."""
    if package is None:
        import plugins as package
    enabled = {}
    for factory in getPlugins(IAuthenticatorFactory, package):
        if factory.build(config) is not None:
            enabled[factory.authmethod] = factory
    return enabled


class Router:
    """Realms plus the authentication methods sessions may use to join them."""

    def __init__(self, realms, factories, config):
        self.realms = {realm.name: realm for realm in realms}
        self.factories = factories
        self.config = config
        self.roles = router_roles()
        #: what may be merged or dropped from a slow peer's backlog (see use_backlog_policy)
        self.backlog_policy = DeliverEverything()
        #: what each network session may hold (calls in flight, subscriptions, …)
        self.session_limits = SessionLimits()

    @classmethod
    def single_realm(cls, name, authorizer, clock, config, factories=None):
        """A router with one realm; *config* enables authentication methods."""
        if factories is None:
            factories = authenticator_factories(config)
        return cls([Realm(name, authorizer, clock)], factories, config)

    def use_backlog_policy(self, policy):
        """Let *policy* (an IBacklogPolicy) shrink slow peers' backlogs of the events it concerns.

        Connections opened afterwards use it.
        """
        verifyObject(IBacklogPolicy, policy)
        self.backlog_policy = policy

    def use_session_limits(self, limits):
        """Bound sessions that join afterwards by *limits* (a SessionLimits)."""
        self.session_limits = limits

    def stats(self):
        """``{sessions, backlog_bytes}``: sessions joined, bytes waiting for slow peers (metrics)."""
        sessions = [s for realm in self.realms.values() for s in realm.sessions.values()]
        backlog = sum(getattr(getattr(s.channel, "queue", None), "bytes", 0) for s in sessions)
        return {"sessions": len(sessions), "backlog_bytes": backlog}

    def new_session(self, channel):
        """A session for a new connection."""
        return RouterSession(self, channel)

    def authenticator_for(self, offered):
        """A fresh authenticator for the first offered method that is enabled."""
        for method in offered:
            factory = self.factories.get(method)
            if factory is not None:
                return factory.build(self.config)
        return None

    def authenticate(self, realm, authmethod, authid, secret=None, peer=None):
        """A :class:`~broker.auth.Principal` for credentials presented outside WAMP, or None.

        For requests that arrive over HTTP (JSON-RPC): the authenticator
        of *authmethod* decides, exactly as for a session joining *realm*
        from *peer* (``tcp4:ADDRESS:PORT``) with that *authid* and, if it
        challenges, *secret* as the answer. None if the method is not
        enabled or the credentials are refused.
        """
        factory = self.factories.get(authmethod)
        if factory is None or realm not in self.realms:
            return None
        authenticator = factory.build(self.config)
        try:
            outcome = authenticator.hello(realm, {"authid": authid, "authrole": None,
                                                  "authextra": None,
                                                  "transport": {"peer": peer}})
            if not isinstance(outcome, Principal):
                outcome = authenticator.authenticate(secret, {})
        except AuthenticationFailed:
            return None
        return outcome if isinstance(outcome, Principal) else None

    def no_method_message(self, offered):
        """What to tell a client whose authentication methods are all refused."""
        if "wampcra" in self.factories:
            return (
                f"this router requires signing in (offered: {offered}): join with your user "
                "name as authid and authmethod 'wampcra' (or 'ticket' with your password)"
            )
        if "ticket" in self.factories:
            return (
                f"this router requires authentication (offered: {offered}): join with "
                "authmethod 'ticket' and the service token as the ticket (the token is "
                "in the URL the service logged at start)"
            )
        return f"none of the offered authentication methods {offered} is enabled here"

    def end_sessions(self, authids, reason, text):
        """Say GOODBYE with *reason* to every session whose authid is one of *authids*."""
        authids = set(authids)
        for realm in self.realms.values():
            for session in list(realm.sessions.values()):
                if session.authid in authids:
                    session.goodbye(reason, text)

    def drop_subscriptions(self, authids, covered):
        """Silently end the subscriptions of *authids*' sessions for which ``covered(uri, match)``.

        For an application that revokes a right to watch: the sessions get no
        further events there (Autobahn's clients close a session that gets an
        UNSUBSCRIBED it did not ask for, so none is sent); subscribing again
        is up to the authorizer.
        """
        authids = set(authids)
        for realm in self.realms.values():
            for session in list(realm.sessions.values()):
                if session.authid in authids:
                    realm.broker.drop(session, covered)

    def shutdown(self):
        """Say GOODBYE (wamp.close.system_shutdown) to every session."""
        for realm in self.realms.values():
            for session in list(realm.sessions.values()):
                session.goodbye(errors.SYSTEM_SHUTDOWN, "the service is shutting down")
