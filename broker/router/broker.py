"""The broker role: subscriptions and the delivery of published events.

Features: exact, prefix and wildcard subscriptions; publisher exclusion
(``exclude_me``); subscriber black- and whitelisting by session, authid and
authrole; publisher identification (when the authorizer discloses); the
subscription meta events. One ``EVENT`` object is built per matching
subscription and sent to all its subscribers, so it is serialized once per
serializer however many subscribers receive it.
"""

from autobahn.util import id as new_id
from autobahn.wamp import message

from broker import errors
from broker.router.index import ObservationIndex
from broker.router.limits import check_observations
from broker.router.uri import MATCH_EXACT, MATCH_WILDCARD, check_uri


class Broker:
    """Pub/sub for one realm."""

    def __init__(self, realm):
        self.realm = realm
        self.index = ObservationIndex()

    # -- subscribe / unsubscribe -------------------------------------------

    def subscribe(self, session, msg):
        match = msg.match or MATCH_EXACT
        check_uri(msg.topic, match, "topic")
        self.realm.authorize(
            session, msg, msg.topic, "subscribe", {"match": match},
            lambda _disclose: self._subscribe(session, msg, match),
        )

    def _subscribe(self, session, msg, match):
        observation = self.index.lookup(msg.topic, match)
        added = observation is None or session not in observation.observers
        if added:
            check_observations(session, "subscriptions", *self.index.held_by(session),
                               match == MATCH_WILDCARD)
        created = observation is None
        if created:
            observation = self.index.create(msg.topic, match, self.realm.meta.now())
        if added:
            self.index.add_observer(observation, session)
        session.send(message.Subscribed(msg.request, observation.id))
        if created:
            self.realm.meta.subscription_created(session, observation)
        if added:
            self.realm.meta.subscribed(session, observation)

    def unsubscribe(self, session, msg):
        observation = self.index.observed(msg.subscription, session)
        if observation is None:
            raise errors.NoSuchSubscription(
                f"session {session.id} has no subscription {msg.subscription}"
            )
        self._remove(session, observation)
        session.send(message.Unsubscribed(msg.request))

    def drop(self, session, covered):
        """End *session*'s subscriptions for which ``covered(uri, match)`` (see Router.drop_subscriptions)."""
        for observation in self.index.observed_by(session):
            if covered(observation.uri, observation.match):
                self._remove(session, observation)

    def session_left(self, session):
        for observation in self.index.observed_by(session):
            self._remove(session, observation)

    def _remove(self, session, observation):
        meta = self.realm.meta
        self.index.withdraw(observation, session, meta.unsubscribed, meta.subscription_deleted)

    # -- publish ------------------------------------------------------------

    def publish(self, session, msg):
        check_uri(msg.topic, MATCH_EXACT, "topic")
        self.realm.authorize(
            session, msg, msg.topic, "publish", {},
            lambda disclose: self._publish(session, msg, disclose),
        )

    def _publish(self, session, msg, disclose):
        observations = self.index.matching(msg.topic)
        if not observations and not msg.acknowledge:
            return  # nobody to tell: no publication id needed (most kernel output)
        publication = new_id()
        if observations:
            receivers = ReceiverFilter(session, msg)
            publisher = session if disclose else None
            for observation in observations:
                self._deliver(observation, msg, publication, publisher, receivers)
        if msg.acknowledge:
            session.send(message.Published(msg.request, publication))

    def publish_local(self, topic, args=None, kwargs=None, exclude=None):
        """Publish an event from the router itself (meta events)."""
        observations = self.index.matching(topic)
        if not observations:
            return
        publication = new_id()
        for observation in observations:
            event = message.Event(
                observation.id,
                publication,
                args=args,
                kwargs=kwargs,
                topic=None if observation.match == MATCH_EXACT else topic,
            )
            for subscriber in list(observation.observers):
                if subscriber is not exclude:
                    subscriber.send(event)

    def _deliver(self, observation, msg, publication, publisher, receivers):
        targets = receivers.select(observation.observers)
        if not targets:
            return
        event = message.Event(
            observation.id,
            publication,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            publisher=publisher.id if publisher else None,
            publisher_authid=publisher.authid if publisher else None,
            publisher_authrole=publisher.authrole if publisher else None,
            topic=None if observation.match == MATCH_EXACT else msg.topic,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )
        for subscriber in targets:
            subscriber.send(event)


class ReceiverFilter:
    """Which subscribers of a publication receive it (exclusion and black/whitelists)."""

    def __init__(self, publisher, msg):
        self.publisher = publisher if msg.exclude_me is not False else None
        self.exclude = set(msg.exclude or ())
        self.exclude_authid = set(msg.exclude_authid or ())
        self.exclude_authrole = set(msg.exclude_authrole or ())
        self.eligible = None if msg.eligible is None else set(msg.eligible)
        self.eligible_authid = None if msg.eligible_authid is None else set(msg.eligible_authid)
        self.eligible_authrole = (
            None if msg.eligible_authrole is None else set(msg.eligible_authrole)
        )
        self.plain = not (
            self.exclude or self.exclude_authid or self.exclude_authrole
            or self.eligible is not None or self.eligible_authid is not None
            or self.eligible_authrole is not None
        )

    def select(self, subscribers):
        """The subscribers, in subscription order, that get the event."""
        if self.plain:
            return [s for s in subscribers if s is not self.publisher]
        return [s for s in subscribers if s is not self.publisher and self.admits(s)]

    def admits(self, s):
        if s.id in self.exclude or s.authid in self.exclude_authid:
            return False
        if s.authrole in self.exclude_authrole:
            return False
        if self.eligible is not None and s.id not in self.eligible:
            return False
        if self.eligible_authid is not None and s.authid not in self.eligible_authid:
            return False
        if self.eligible_authrole is not None and s.authrole not in self.eligible_authrole:
            return False
        return True
