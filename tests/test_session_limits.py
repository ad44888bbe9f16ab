"""What one session may hold in the router is bounded, refused with documented errors, and freed."""

import random

from autobahn.wamp import message
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.auth import Principal
from broker.router.index import ObservationIndex
from broker.router.limits import SessionLimits
from broker.router.uri import MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD, wildcard_matches
from broker.testing import MemoryRouter


def limited(**limits):
    """A MemoryRouter whose network sessions have these bounds."""
    memory = MemoryRouter()
    memory.router.use_session_limits(SessionLimits(**limits))
    return memory


def kinds(messages):
    return [type(m).__name__ for m in messages]


def subscribe(client, topic, match=MATCH_EXACT):
    client.send(message.Subscribe(client.request_id(), topic, match=match))
    return client.take()[-1]


def register(client, procedure, match=MATCH_EXACT):
    client.send(message.Register(client.request_id(), procedure, match=match))
    return client.take()[-1]


class PendingCallTests(SynchronousTestCase):
    """A caller with as many calls in flight as it may gets an error at once, the callee nothing."""

    def setUp(self):
        self.memory = limited(calls=3)
        self.callee = self.memory.joined()
        self.assertIsInstance(register(self.callee, "com.example.reply"), message.Registered)
        self.caller = self.memory.joined()

    def call(self):
        self.caller.send(message.Call(self.caller.request_id(), "com.example.reply", args=["m1"]))
        return self.caller.take()

    def test_past_the_bound_a_call_is_refused(self):
        """The fourth unanswered call is too_many_calls; only three INVOCATIONs reach the callee."""
        for _ in range(3):
            self.assertEqual(self.call(), [])
        refused = self.call()
        self.assertEqual([(type(m), m.error) for m in refused],
                         [(message.Error, errors.TOO_MANY_CALLS)])
        self.assertIn("--max-pending-calls", refused[0].args[0])
        self.assertEqual(kinds(self.callee.take()), ["Invocation"] * 3)

    def test_an_answer_makes_room(self):
        """Once the callee answers one call, the caller may call again."""
        for _ in range(3):
            self.call()
        first = self.callee.take()[0]
        self.callee.send(message.Yield(first.request, args=["done"]))
        self.assertEqual(kinds(self.caller.take()), ["Result"])
        self.assertEqual(self.call(), [])
        self.assertEqual(kinds(self.callee.take()), ["Invocation"])

    def test_the_bound_is_per_session(self):
        """Another caller is not refused because one caller is at its bound."""
        for _ in range(4):
            self.call()
        other = self.memory.joined()
        other.send(message.Call(other.request_id(), "com.example.reply"))
        self.assertEqual(other.take(), [])
        self.assertEqual(len(self.callee.take()), 4)


class ReplyFloodTests(SynchronousTestCase):
    """Issue 10's attack: 50,000 calls to a procedure that answers only when a cell ends."""

    def test_fifty_thousand_waiting_calls_stop_at_the_default_bound(self):
        """With the defaults, 1,000 calls wait at the callee and 49,000 are refused at once."""
        memory = MemoryRouter()
        callee = memory.joined()
        register(callee, "com.example.kernel.reply")
        caller = memory.joined()
        for _ in range(50_000):
            caller.send(message.Call(caller.request_id(), "com.example.kernel.reply", args=["m"]))
        refused = caller.take()
        self.assertEqual(len(refused), 49_000)
        self.assertEqual({m.error for m in refused}, {errors.TOO_MANY_CALLS})
        self.assertEqual(len(callee.take()), 1000)
        self.assertEqual(len(memory.realm.dealer.calls), 1000)


class ObservationLimitTests(SynchronousTestCase):
    """Subscriptions, registrations and wildcard patterns per session."""

    def test_subscriptions_past_the_bound_are_refused(self):
        """The sixth subscription is too_many_subscriptions; a repeat or an unsubscribe frees room."""
        client = limited(subscriptions=5).joined()
        ids = [subscribe(client, f"com.example.t{i}").subscription for i in range(5)]
        refused = subscribe(client, "com.example.t5")
        self.assertEqual(refused.error, errors.TOO_MANY_SUBSCRIPTIONS)
        self.assertIsInstance(subscribe(client, "com.example.t0"), message.Subscribed)  # held
        client.send(message.Unsubscribe(client.request_id(), ids[0]))
        client.take()
        self.assertIsInstance(subscribe(client, "com.example.t5"), message.Subscribed)

    def test_registrations_past_the_bound_are_refused(self):
        """The fourth registration is too_many_registrations, and nothing is registered."""
        memory = limited(registrations=3)
        client = memory.joined()
        for i in range(3):
            self.assertIsInstance(register(client, f"com.example.p{i}"), message.Registered)
        refused = register(client, "com.example.p3")
        self.assertEqual(refused.error, errors.TOO_MANY_REGISTRATIONS)
        self.assertIsNone(memory.realm.dealer.index.lookup("com.example.p3"))

    def test_wildcards_have_a_lower_bound_of_their_own(self):
        """Past --max-wildcards a wildcard pattern is refused, while exact URIs still go."""
        client = limited(wildcards=2).joined()
        for i in range(2):
            self.assertIsInstance(subscribe(client, f"com.x{i}..c", MATCH_WILDCARD), message.Subscribed)
        refused = subscribe(client, "com.x9..c", MATCH_WILDCARD)
        self.assertEqual(refused.error, errors.TOO_MANY_SUBSCRIPTIONS)
        self.assertIn("--max-wildcards", refused.args[0])
        self.assertIsInstance(subscribe(client, "com.example.exact"), message.Subscribed)
        self.assertEqual(register(client, "com..w", MATCH_WILDCARD).__class__, message.Registered)
        self.assertEqual(register(client, "com..v", MATCH_WILDCARD).__class__, message.Registered)
        self.assertEqual(register(client, "com..u", MATCH_WILDCARD).error,
                         errors.TOO_MANY_REGISTRATIONS)

    def test_in_process_sessions_are_not_bounded_here(self):
        """The service's own sessions (given a principal by the wiring) have their own limits."""
        host = limited(registrations=2, wildcards=1).joined(Principal("svc", "user", "local"))
        for i in range(5):
            self.assertIsInstance(register(host, f"com.example.p{i}"), message.Registered)


class LeavingTests(SynchronousTestCase):
    """A session that leaves frees everything it held in the router."""

    def test_everything_is_freed(self):
        """Subscriptions, registrations, patterns and calls in flight leave no entry behind."""
        memory = MemoryRouter()
        callee = memory.joined()
        register(callee, "com.example.slow")
        flooder = memory.joined()
        for i in range(300):
            subscribe(flooder, f"com.example.t{i}")
            subscribe(flooder, f"com.w{i}..x{i % 7}", MATCH_WILDCARD)
            subscribe(flooder, f"com.p{i}", MATCH_PREFIX)
            register(flooder, f"com.r{i}..y", MATCH_WILDCARD)
            flooder.send(message.Call(flooder.request_id(), "com.example.slow"))
        dealer, broker = memory.realm.dealer, memory.realm.broker
        self.assertEqual(len(dealer.calls), 300)
        flooder.session.connection_lost()
        self.assertTrue(broker.index.is_empty())
        self.assertEqual(len(dealer.calls), 0)
        self.assertEqual(dealer.calls.involving(callee.session), [])
        self.assertEqual(dealer.calls.made_by(flooder.session), 0)
        self.assertEqual([o.uri for o in dealer.index], ["com.example.slow"])
        self.assertEqual(dealer.index.held_by(flooder.session), (0, 0))


class WildcardIndexTests(SynchronousTestCase):
    """Wildcard patterns are indexed by shape: matching costs a lookup per shape, not per pattern."""

    def test_many_patterns_of_one_shape_are_one_lookup(self):
        """100,000 patterns of one shape: the match is found by its literals alone."""
        index = ObservationIndex()
        for i in range(100_000):
            index.create(f"a{i}..c", MATCH_WILDCARD, 0)
        self.assertEqual(len(index._wildcard[3]), 1)  # one shape to look into per publish
        self.assertEqual([o.uri for o in index.matching("a77.anything.c")], ["a77..c"])
        self.assertEqual(index.matching("a77.anything.d"), [])

    def test_matching_agrees_with_the_definition(self):
        """Random patterns and URIs: the index finds exactly the patterns that match, and forgets deleted ones."""
        rng = random.Random(9)
        words = ["a", "b", ""]
        index, patterns = ObservationIndex(), {}
        for _ in range(400):
            uri = ".".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
            if uri.replace(".", "") and uri not in patterns:  # at least one literal component
                patterns[uri] = index.create(uri, MATCH_WILDCARD, 0)
        for uri in list(patterns)[::3]:
            index.delete(patterns.pop(uri))
        for _ in range(300):
            topic = ".".join(rng.choice("ab") for _ in range(rng.randint(1, 4)))
            expected = {p for p in patterns if wildcard_matches(p.split("."), topic.split("."))}
            self.assertEqual({o.uri for o in index.matching(topic)}, expected, topic)
        for observation in list(patterns.values()):
            index.delete(observation)
        self.assertTrue(index.is_empty())


class MetaArgumentTests(SynchronousTestCase):
    """The match and lookup meta procedures refuse a URI that is not a string."""

    def test_a_non_string_uri_is_invalid_argument(self):
        """wamp.registration.match(None) (found by the fuzzer) is invalid_argument, not a crash."""
        client = MemoryRouter().joined()
        register(client, "com..x", MATCH_WILDCARD)
        for procedure, args in (("wamp.registration.match", [None]),
                                ("wamp.subscription.match", [3]),
                                ("wamp.registration.lookup", [None, {"match": "wildcard"}])):
            client.send(message.Call(client.request_id(), procedure, args=args))
            self.assertEqual(client.take()[-1].error, errors.INVALID_ARGUMENT, procedure)
