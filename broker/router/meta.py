"""The WAMP meta API of a realm: session, subscription and registration reflection.

Procedures (``wamp.session.*``, ``wamp.subscription.*``,
``wamp.registration.*``) are answered by the router itself; meta events
(``wamp.session.on_join`` …) are published from the router with no publisher
session. Shapes follow the WAMP Advanced Profile and Crossbar.io.
"""

from broker import errors
from broker.timestamps import iso_utc
from broker.router.uri import MATCH_EXACT


class MetaApi:
    """Meta procedures and events for one realm."""

    def __init__(self, realm):
        self.realm = realm
        broker, dealer = realm.broker, realm.dealer
        self.procedures = {
            "wamp.session.count": self.session_count,
            "wamp.session.list": self.session_list,
            "wamp.session.get": self.session_get,
            "wamp.subscription.list": lambda: broker.index.uris_by_match(),
            "wamp.subscription.lookup": lambda topic, options=None: _lookup(broker.index, topic, options),
            "wamp.subscription.match": lambda topic: [o.id for o in broker.index.matching(_uri(topic))] or None,
            "wamp.subscription.get": lambda subscription_id: _get(broker.index, subscription_id, errors.NoSuchSubscription).describe(),
            "wamp.subscription.list_subscribers": lambda subscription_id: _observers(broker.index, subscription_id, errors.NoSuchSubscription),
            "wamp.subscription.count_subscribers": lambda subscription_id: len(_observers(broker.index, subscription_id, errors.NoSuchSubscription)),
            "wamp.registration.list": lambda: dealer.index.uris_by_match(),
            "wamp.registration.lookup": lambda procedure, options=None: _lookup(dealer.index, procedure, options),
            "wamp.registration.match": lambda procedure: getattr(dealer.index.best_match(_uri(procedure)), "id", None),
            "wamp.registration.get": lambda registration_id: _get(dealer.index, registration_id, errors.NoSuchRegistration).describe(),
            "wamp.registration.list_callees": lambda registration_id: _observers(dealer.index, registration_id, errors.NoSuchRegistration),
            "wamp.registration.count_callees": lambda registration_id: len(_observers(dealer.index, registration_id, errors.NoSuchRegistration)),
        }

    def now(self):
        """The realm clock's time as an ISO 8601 UTC timestamp."""
        return iso_utc(self.realm.clock.seconds())

    # -- session procedures ---------------------------------------------------

    def _sessions(self, filter_authroles):
        sessions = self.realm.sessions.values()
        if filter_authroles is None:
            return list(sessions)
        return [s for s in sessions if s.authrole in filter_authroles]

    def session_count(self, filter_authroles=None):
        return len(self._sessions(filter_authroles))

    def session_list(self, filter_authroles=None):
        return [s.id for s in self._sessions(filter_authroles)]

    def session_get(self, session_id):
        session = self.realm.sessions.get(session_id)
        if session is None:
            raise errors.NoSuchSession(f"no session {session_id!r} in realm {self.realm.name!r}")
        return session.details()

    # -- events -----------------------------------------------------------------

    def _publish(self, topic, *args, exclude=None):
        self.realm.broker.publish_local(topic, list(args), exclude=exclude)

    def session_joined(self, session):
        self._publish("wamp.session.on_join", session.details(), exclude=session)

    def session_left(self, session):
        self._publish("wamp.session.on_leave", session.id, session.authid, session.authrole)

    def subscription_created(self, session, observation):
        self._publish("wamp.subscription.on_create", session.id, observation.describe())

    def subscribed(self, session, observation):
        self._publish("wamp.subscription.on_subscribe", session.id, observation.id)

    def unsubscribed(self, session, observation):
        self._publish("wamp.subscription.on_unsubscribe", session.id, observation.id)

    def subscription_deleted(self, session, observation):
        self._publish("wamp.subscription.on_delete", session.id, observation.id)

    def registration_created(self, session, observation):
        self._publish("wamp.registration.on_create", session.id, observation.describe())

    def registered(self, session, observation):
        self._publish("wamp.registration.on_register", session.id, observation.id)

    def unregistered(self, session, observation):
        self._publish("wamp.registration.on_unregister", session.id, observation.id)

    def registration_deleted(self, session, observation):
        self._publish("wamp.registration.on_delete", session.id, observation.id)


def _uri(value):
    """*value*, if it is a URI string; else invalid_argument."""
    if not isinstance(value, str):
        raise errors.InvalidArgument(f"a URI is a string, not {value!r}")
    return value


def _lookup(index, uri, options):
    match = (options or {}).get("match", MATCH_EXACT)
    observation = index.lookup(_uri(uri), match)
    return observation.id if observation is not None else None


def _get(index, observation_id, not_found):
    observation = index.get(observation_id)
    if observation is None:
        raise not_found(f"no such id {observation_id!r}")
    return observation


def _observers(index, observation_id, not_found):
    return [s.id for s in _get(index, observation_id, not_found).observers]
