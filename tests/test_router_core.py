"""Deterministic tests of the router core: message objects in, messages out, fake clock."""

from autobahn.wamp import message
from autobahn.wamp.role import RoleCalleeFeatures, RoleCallerFeatures
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from broker import errors
from broker.auth import (
    KERNEL_HOST_ROLE,
    NOTEBOOKS_ROLE,
    DefaultAuthorizer,
    IAuthorizer,
    Principal,
)
from broker.testing import MemoryRouter, run_due


#: the kernel host's session, as the wiring attaches it
HOST = Principal("webkernel_host", KERNEL_HOST_ROLE, "local")


def only(messages, kind):
    """The single message of *kind* in *messages*."""
    found = [m for m in messages if isinstance(m, kind)]
    assert len(found) == 1, messages
    return found[0]


class HandshakeTests(SynchronousTestCase):
    """Opening and closing sessions."""

    def test_anonymous_welcome_announces_advanced_features(self):
        """WELCOME carries a session id and the advanced features we implement."""
        client = MemoryRouter().client().join()
        welcome = only(client.take(), message.Welcome)
        self.assertEqual(welcome.authrole, "anonymous")
        dealer = welcome.roles["dealer"]
        broker = welcome.roles["broker"]
        for feature in ("progressive_call_results", "call_canceling", "call_timeout",
                        "caller_identification", "pattern_based_registration",
                        "shared_registration", "registration_meta_api", "session_meta_api"):
            self.assertTrue(getattr(dealer, feature), feature)
        for feature in ("publisher_identification", "publisher_exclusion",
                        "subscriber_blackwhite_listing", "pattern_based_subscription",
                        "subscription_meta_api", "session_meta_api"):
            self.assertTrue(getattr(broker, feature), feature)

    def test_unknown_realm_aborts(self):
        """HELLO for a realm we do not serve gets ABORT no_such_realm."""
        client = MemoryRouter().client().join(realm="nope")
        abort = only(client.take(), message.Abort)
        self.assertEqual(abort.reason, errors.NO_SUCH_REALM)
        self.assertTrue(client.channel.closed)

    def test_ticket_with_right_token_joins(self):
        """The service token as a WAMP ticket joins, with the requested authid."""
        router = MemoryRouter(token="s3cret", anonymous=False)
        client = router.client().join(authmethods=["ticket"], authid="alice")
        challenge = only(client.take(), message.Challenge)
        self.assertEqual(challenge.method, "ticket")
        client.send(message.Authenticate("s3cret"))
        welcome = only(client.take(), message.Welcome)
        self.assertEqual((welcome.authid, welcome.authrole, welcome.authmethod),
                         ("alice", "user", "ticket"))

    def test_wrong_ticket_is_not_authorized(self):
        """A wrong ticket gets ABORT not_authorized with a readable message."""
        router = MemoryRouter(token="s3cret", anonymous=False)
        client = router.client().join(authmethods=["ticket"])
        client.take()
        client.send(message.Authenticate("guess"))
        abort = only(client.take(), message.Abort)
        self.assertEqual(abort.reason, errors.NOT_AUTHORIZED)
        self.assertIn("token", abort.message)
        self.assertEqual(router.realm.sessions, {})

    def test_kernel_host_authid_needs_host_token(self):
        """authid webkernel_host joins with the host token as webkernel_host, never with the user token."""
        router = MemoryRouter(token="user", anonymous=False, host_token="host")
        for ticket, expected in (("host", message.Welcome), ("user", message.Abort)):
            client = router.client().join(authmethods=["ticket"], authid="webkernel_host")
            client.take()
            client.send(message.Authenticate(ticket))
            reply = only(client.take(), expected)
        welcome_role = router.realm.sessions and next(iter(router.realm.sessions.values())).authrole
        self.assertEqual(welcome_role, KERNEL_HOST_ROLE)
        self.assertEqual(reply.reason, errors.NOT_AUTHORIZED)

    def test_missing_ticket_is_not_authorized(self):
        """A client that offers no method the service accepts is told how to join."""
        router = MemoryRouter(token="s3cret", anonymous=False)
        client = router.client().join()
        abort = only(client.take(), message.Abort)
        self.assertEqual(abort.reason, errors.NOT_AUTHORIZED)
        self.assertIn("ticket", abort.message)

    def test_goodbye(self):
        """GOODBYE is answered with goodbye_and_out and the session leaves."""
        router = MemoryRouter()
        client = router.joined()
        client.send(message.Goodbye())
        self.assertEqual(only(client.take(), message.Goodbye).reason, errors.GOODBYE_AND_OUT)
        self.assertEqual(router.realm.sessions, {})

    def test_message_before_join_is_protocol_violation(self):
        """A CALL before HELLO closes the session with protocol_violation."""
        client = MemoryRouter().client()
        client.send(message.Call(1, "com.x"))
        self.assertEqual(only(client.take(), message.Abort).reason, errors.PROTOCOL_VIOLATION)

    def test_router_only_message_is_protocol_violation(self):
        """A client sending EVENT (a router's message) is closed; others stay."""
        router = MemoryRouter()
        bad, good = router.joined(), router.joined()
        bad.send(message.Event(1, 2))
        self.assertEqual(only(bad.take(), message.Abort).reason, errors.PROTOCOL_VIOLATION)
        self.assertEqual(list(router.realm.sessions), [good.session.id])

    def test_second_hello_is_protocol_violation(self):
        """HELLO in a joined session is a protocol violation."""
        client = MemoryRouter().joined()
        client.join()
        self.assertEqual(only(client.take(), message.Abort).reason, errors.PROTOCOL_VIOLATION)

    def test_bad_uri_request_gets_error_and_session_stays(self):
        """A request with an invalid URI gets ERROR invalid_uri, not a closed session."""
        client = MemoryRouter().joined()
        client.session.bad_request(message.Call.MESSAGE_TYPE, 7, "bad uri")
        error = only(client.take(), message.Error)
        self.assertEqual((error.request, error.error), (7, errors.INVALID_URI))
        self.assertFalse(client.channel.closed)


class RpcTests(SynchronousTestCase):
    """Registering, calling, yielding."""

    def setUp(self):
        self.router = MemoryRouter()
        self.callee = self.router.joined()
        self.caller = self.router.joined()

    def register(self, client, uri, **options):
        client.send(message.Register(client.request_id(), uri, **options))
        return only(client.take(), message.Registered).registration

    def call(self, uri, *args, **options):
        request = self.caller.request_id()
        self.caller.send(message.Call(request, uri, args=list(args), **options))
        return request

    def test_call_result_round_trip(self):
        """CALL reaches the callee as INVOCATION; its YIELD comes back as RESULT."""
        registration = self.register(self.callee, "com.math.add")
        request = self.call("com.math.add", 2, 3)
        invocation = only(self.callee.take(), message.Invocation)
        self.assertEqual((invocation.registration, invocation.args), (registration, [2, 3]))
        self.assertEqual(invocation.caller, self.caller.session.id)  # disclosed
        self.callee.send(message.Yield(invocation.request, args=[5]))
        result = only(self.caller.take(), message.Result)
        self.assertEqual((result.request, result.args), (request, [5]))

    def test_error_from_callee_reaches_caller(self):
        """The callee's ERROR is forwarded with its URI, args and kwargs."""
        self.register(self.callee, "com.fail")
        request = self.call("com.fail")
        invocation = only(self.callee.take(), message.Invocation)
        self.callee.send(message.Error(message.Invocation.MESSAGE_TYPE, invocation.request,
                                       "com.example.oops", args=[1], kwargs={"a": 2}))
        error = only(self.caller.take(), message.Error)
        self.assertEqual((error.request, error.error, error.args, error.kwargs),
                         (request, "com.example.oops", [1], {"a": 2}))

    def test_no_such_procedure(self):
        """Calling what nobody registered is no_such_procedure."""
        self.call("com.none")
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.NO_SUCH_PROCEDURE)

    def test_procedure_already_exists(self):
        """A second single registration of a URI is refused."""
        self.register(self.callee, "com.p")
        self.caller.send(message.Register(1, "com.p"))
        self.assertEqual(only(self.caller.take(), message.Error).error,
                         errors.PROCEDURE_ALREADY_EXISTS)

    def test_progressive_results(self):
        """Progressive YIELDs reach a caller that asked for progress, in order."""
        self.register(self.callee, "com.slow")
        self.call("com.slow", receive_progress=True)
        invocation = only(self.callee.take(), message.Invocation)
        self.assertTrue(invocation.receive_progress)
        for n in (1, 2):
            self.callee.send(message.Yield(invocation.request, args=[n], progress=True))
        self.callee.send(message.Yield(invocation.request, args=[3]))
        results = self.caller.take()
        self.assertEqual([(r.args, bool(r.progress)) for r in results],
                         [([1], True), ([2], True), ([3], False)])

    def test_progress_not_sent_to_caller_that_did_not_ask(self):
        """Without receive_progress the caller sees only the final RESULT."""
        self.register(self.callee, "com.slow")
        self.call("com.slow")
        invocation = only(self.callee.take(), message.Invocation)
        self.callee.send(message.Yield(invocation.request, args=[1], progress=True))
        self.callee.send(message.Yield(invocation.request, args=[2]))
        self.assertEqual([r.args for r in self.caller.take()], [[2]])

    def cancel(self, request, mode):
        self.caller.send(message.Cancel(request, mode=mode))

    def test_cancel_killnowait(self):
        """killnowait: the caller gets canceled at once, the callee an INTERRUPT."""
        self.register(self.callee, "com.slow")
        request = self.call("com.slow")
        invocation = only(self.callee.take(), message.Invocation)
        self.cancel(request, "killnowait")
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.CANCELED)
        self.assertEqual(only(self.callee.take(), message.Interrupt).request, invocation.request)
        self.callee.send(message.Yield(invocation.request, args=[1]))
        self.assertEqual(self.caller.take(), [])  # a late result is dropped

    def test_cancel_kill_waits_for_callee(self):
        """kill: INTERRUPT first; the caller's ERROR comes when the callee answers."""
        self.register(self.callee, "com.slow")
        request = self.call("com.slow")
        invocation = only(self.callee.take(), message.Invocation)
        self.cancel(request, "kill")
        self.assertEqual(only(self.callee.take(), message.Interrupt).mode, "kill")
        self.assertEqual(self.caller.take(), [])
        self.callee.send(message.Error(message.Invocation.MESSAGE_TYPE, invocation.request,
                                       errors.CANCELED))
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.CANCELED)

    def test_cancel_skip(self):
        """skip: the caller gets canceled, the callee hears nothing."""
        self.register(self.callee, "com.slow")
        request = self.call("com.slow")
        self.callee.take()
        self.cancel(request, "skip")
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.CANCELED)
        self.assertEqual(self.callee.take(), [])

    def test_cancel_degrades_to_skip_for_callee_without_canceling(self):
        """A callee that did not announce call_canceling gets no INTERRUPT."""
        plain = self.router.client().join(roles={"callee": RoleCalleeFeatures()})
        plain.take()
        self.register(plain, "com.plain")
        request = self.call("com.plain")
        plain.take()
        self.cancel(request, "kill")
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.CANCELED)
        self.assertEqual(plain.take(), [])

    def test_timeout(self):
        """After `timeout` ms the caller gets wamp.error.timeout and the callee an INTERRUPT."""
        self.register(self.callee, "com.slow")
        self.call("com.slow", timeout=250)
        self.callee.take()
        self.router.clock.advance(0.249)
        self.assertEqual(self.caller.take(), [])
        self.router.clock.advance(0.002)
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.TIMEOUT)
        self.assertEqual(only(self.callee.take(), message.Interrupt).reason, errors.TIMEOUT)

    def test_answer_before_timeout_stops_timer(self):
        """A call answered in time leaves no timer behind."""
        self.register(self.callee, "com.quick")
        self.call("com.quick", timeout=1000)
        invocation = only(self.callee.take(), message.Invocation)
        self.callee.send(message.Yield(invocation.request))
        self.assertEqual(self.router.clock.getDelayedCalls(), [])

    def test_callee_leaving_fails_pending_calls(self):
        """Pending calls of a callee that leaves fail with canceled."""
        self.register(self.callee, "com.slow")
        self.call("com.slow")
        self.callee.send(message.Goodbye())
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.CANCELED)
        self.assertEqual(len(self.router.realm.dealer.calls), 0)

    def test_caller_leaving_does_not_interrupt_callee(self):
        """A caller that leaves mid-call does not stop the work; the late answer is dropped."""
        self.register(self.callee, "com.slow")
        self.call("com.slow")
        invocation = only(self.callee.take(), message.Invocation)
        self.caller.send(message.Goodbye())
        self.assertEqual(self.callee.take(), [])
        self.callee.send(message.Yield(invocation.request, args=[1]))
        self.assertEqual(len(self.router.realm.dealer.calls), 0)

    def test_prefix_and_wildcard_registrations(self):
        """Pattern registrations receive calls with the concrete procedure; exact wins."""
        self.register(self.callee, "com.app", match="prefix")
        self.register(self.callee, "com..get", match="wildcard")
        self.register(self.callee, "com.app.exact")
        for uri, match in (("com.app.x.y", "com.app.x.y"), ("com.user.get", "com.user.get"),
                           ("com.app.exact", None)):
            self.call(uri)
            invocation = only(self.callee.take(), message.Invocation)
            self.assertEqual(invocation.procedure, match)

    def test_wildcard_precedence_follows_the_spec(self):
        """Among wildcard matches the longest literal runs win, run by run (spec examples)."""
        ids = {name: self.register(self.callee, name, match="wildcard")
               for name in ("a1.b2..d4.e5", "a1.b2.c3..e5", "a1.b2..d4.e5..g7", "a1.b2..d4..f6.g7")}
        for uri, winner in (("a1.b2.c55.d4.e5", "a1.b2..d4.e5"), ("a1.b2.c3.d4.e5", "a1.b2.c3..e5"),
                            ("a1.b2.c88.d4.e5.f6.g7", "a1.b2..d4.e5..g7")):
            self.call(uri)
            self.assertEqual(only(self.callee.take(), message.Invocation).registration, ids[winner])

    def shared(self, invoke, count=3):
        callees = [self.router.joined() for _ in range(count)]
        for callee in callees:
            self.register(callee, "com.shared", invoke=invoke)
        return callees

    def invoked(self, callees, calls):
        picks = []
        for _ in range(calls):
            self.call("com.shared")
            picks.append([i for i, c in enumerate(callees) if c.take()])
        return picks

    def test_shared_roundrobin(self):
        """roundrobin takes the callees in turn."""
        callees = self.shared("roundrobin")
        self.assertEqual(self.invoked(callees, 4), [[0], [1], [2], [0]])

    def test_shared_first(self):
        """first always takes the oldest registration."""
        self.assertEqual(self.invoked(self.shared("first"), 2), [[0], [0]])

    def test_shared_last(self):
        """last always takes the newest registration."""
        self.assertEqual(self.invoked(self.shared("last"), 2), [[2], [2]])

    def test_shared_random_reaches_every_callee(self):
        """random spreads calls: over 60 calls each of 3 callees is reached."""
        picks = self.invoked(self.shared("random"), 60)
        self.assertEqual({p[0] for p in picks}, {0, 1, 2})

    def test_shared_policy_conflict(self):
        """Joining a shared registration with another policy is refused."""
        self.shared("roundrobin", count=1)
        self.caller.send(message.Register(1, "com.shared", invoke="random"))
        self.assertEqual(only(self.caller.take(), message.Error).error,
                         errors.PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT)

    def test_unregister(self):
        """After UNREGISTER the procedure is gone."""
        registration = self.register(self.callee, "com.p")
        self.callee.send(message.Unregister(9, registration))
        self.assertEqual(only(self.callee.take(), message.Unregistered).request, 9)
        self.call("com.p")
        self.assertEqual(only(self.caller.take(), message.Error).error, errors.NO_SUCH_PROCEDURE)


class PubSubTests(SynchronousTestCase):
    """Subscribing and publishing."""

    def setUp(self):
        self.router = MemoryRouter()
        self.publisher = self.router.joined(authid="pub")

    def subscriber(self, topic="com.t", authid=None, **options):
        client = self.router.joined(authid=authid)
        client.send(message.Subscribe(client.request_id(), topic, **options))
        client.subscription = only(client.take(), message.Subscribed).subscription
        return client

    def publish(self, topic="com.t", **options):
        self.publisher.send(message.Publish(self.publisher.request_id(), topic, args=["hi"], **options))

    def test_event_delivery_and_publisher_exclusion(self):
        """Subscribers get the event; the publisher does not, unless exclude_me=False."""
        a = self.subscriber()
        self.publisher.send(message.Subscribe(1, "com.t"))
        self.publisher.take()
        self.publish(acknowledge=True)
        event = only(a.take(), message.Event)
        self.assertEqual((event.subscription, event.args), (a.subscription, ["hi"]))
        self.assertEqual(event.publisher, self.publisher.session.id)
        only(self.publisher.take(), message.Published)
        self.publish(exclude_me=False)
        only(self.publisher.take(), message.Event)

    def test_blacklist_and_whitelist(self):
        """exclude/eligible by session, authid and authrole select receivers."""
        a, b, c = (self.subscriber(authid=n) for n in ("a", "b", "c"))

        def receivers(**options):
            self.publish(**options)
            return [n for n, s in zip("abc", (a, b, c)) if s.take()]

        self.assertEqual(receivers(exclude=[a.session.id]), ["b", "c"])
        self.assertEqual(receivers(eligible=[a.session.id, b.session.id]), ["a", "b"])
        self.assertEqual(receivers(exclude_authid=["c"]), ["a", "b"])
        self.assertEqual(receivers(eligible_authid=["b"]), ["b"])
        self.assertEqual(receivers(eligible_authrole=["anonymous"], exclude=[b.session.id]), ["a", "c"])
        self.assertEqual(receivers(exclude_authrole=["anonymous"]), [])

    def test_prefix_and_wildcard_subscriptions(self):
        """Pattern subscriptions match and carry the concrete topic."""
        prefix = self.subscriber("com.app", match="prefix")
        wildcard = self.subscriber("com..update", match="wildcard")
        self.publish("com.app.update")
        self.assertEqual(only(prefix.take(), message.Event).topic, "com.app.update")
        self.assertEqual(only(wildcard.take(), message.Event).topic, "com.app.update")
        self.publish("com.other.thing")
        self.assertEqual(prefix.take() + wildcard.take(), [])

    def test_unsubscribe(self):
        """After UNSUBSCRIBE no more events; an unknown id is no_such_subscription."""
        a = self.subscriber()
        a.send(message.Unsubscribe(5, a.subscription))
        only(a.take(), message.Unsubscribed)
        self.publish()
        self.assertEqual(a.take(), [])
        a.send(message.Unsubscribe(6, a.subscription))
        self.assertEqual(only(a.take(), message.Error).error, errors.NO_SUCH_SUBSCRIPTION)

    def test_one_event_object_serves_all_subscribers(self):
        """Subscribers of one subscription share the EVENT (serialized once)."""
        a, b = self.subscriber(), self.subscriber()
        self.publish()
        self.assertIs(a.take()[0], b.take()[0])


class MetaApiTests(SynchronousTestCase):
    """The session, subscription and registration meta API."""

    def setUp(self):
        self.router = MemoryRouter()
        self.client = self.router.joined(authid="me")

    def call(self, uri, *args, **kwargs):
        self.client.send(message.Call(self.client.request_id(), uri, args=list(args), kwargs=kwargs))
        reply = self.client.take()[-1]
        if isinstance(reply, message.Error):
            return reply.error
        return reply.args[0]

    def test_sessions(self):
        """count, list and get describe the realm's sessions."""
        other = self.router.joined(authid="other")
        self.assertEqual(self.call("wamp.session.count"), 2)
        self.assertEqual(set(self.call("wamp.session.list")),
                         {self.client.session.id, other.session.id})
        self.assertEqual(self.call("wamp.session.get", other.session.id)["authid"], "other")
        self.assertEqual(self.call("wamp.session.get", 12345), errors.NO_SUCH_SESSION)
        self.assertEqual(self.call("wamp.session.count", ["nobody"]), 0)

    def test_join_and_leave_events(self):
        """on_join and on_leave are published to subscribers."""
        self.client.send(message.Subscribe(1, "wamp.session.", match="prefix"))
        self.client.take()
        other = self.router.joined(authid="other")
        joined = only(self.client.take(), message.Event)
        self.assertEqual(joined.args[0]["session"], other.session.id)
        other.send(message.Goodbye())
        left = only(self.client.take(), message.Event)
        self.assertEqual(left.topic, "wamp.session.on_leave")
        self.assertEqual(left.args[:2], [other.session.id, "other"])

    def test_subscription_reflection(self):
        """lookup, match, get, list_subscribers and count_subscribers agree."""
        self.client.send(message.Subscribe(1, "com.t"))
        sub = only(self.client.take(), message.Subscribed).subscription
        self.assertEqual(self.call("wamp.subscription.lookup", "com.t"), sub)
        self.assertEqual(self.call("wamp.subscription.match", "com.t"), [sub])
        self.assertEqual(self.call("wamp.subscription.get", sub)["uri"], "com.t")
        self.assertEqual(self.call("wamp.subscription.list_subscribers", sub), [self.client.session.id])
        self.assertEqual(self.call("wamp.subscription.count_subscribers", sub), 1)
        self.assertEqual(self.call("wamp.subscription.list")["exact"], [sub])
        self.assertEqual(self.call("wamp.subscription.get", 1), errors.NO_SUCH_SUBSCRIPTION)

    def test_registration_reflection(self):
        """lookup, match, get, list_callees and count_callees agree."""
        self.client.send(message.Register(1, "com.p", match="prefix", invoke="roundrobin"))
        reg = only(self.client.take(), message.Registered).registration
        self.assertEqual(self.call("wamp.registration.lookup", "com.p", {"match": "prefix"}), reg)
        self.assertEqual(self.call("wamp.registration.match", "com.p.x"), reg)
        self.assertEqual(self.call("wamp.registration.get", reg)["invoke"], "roundrobin")
        self.assertEqual(self.call("wamp.registration.list_callees", reg), [self.client.session.id])
        self.assertEqual(self.call("wamp.registration.count_callees", reg), 1)
        self.assertEqual(self.call("wamp.registration.list")["prefix"], [reg])

    def removal_events(self, kind, observe, remove, removed, not_found):
        """``(refusals, meta events)`` as a stranger, then both observers, remove one shared observation."""
        watcher = self.router.joined(authid="watcher")
        watcher.send(message.Subscribe(1, f"wamp.{kind}.", match="prefix"))
        watcher.take()
        first, second, stranger = (self.router.joined(authid=n) for n in ("a", "b", "c"))
        for session in (first, second):
            session.send(observe(1))
            observation_id = getattr(session.take()[-1], kind)
        watcher.take()
        stranger.send(remove(2, observation_id))
        refused = [only(stranger.take(), message.Error).error]
        events = []
        for session in (first, second):
            session.send(remove(3, observation_id))
            only(session.take(), removed)
            events.append([(e.topic, e.args[1] == observation_id) for e in watcher.take()])
        return refused + [self.call(f"wamp.{kind}.get", observation_id) == not_found], events

    def test_unsubscribe_events(self):
        """Only a subscriber may unsubscribe; each is announced, the last one out deletes the subscription."""
        refused, events = self.removal_events(
            "subscription", lambda r: message.Subscribe(r, "com.t"), message.Unsubscribe,
            message.Unsubscribed, errors.NO_SUCH_SUBSCRIPTION)
        self.assertEqual(refused, [errors.NO_SUCH_SUBSCRIPTION, True])
        self.assertEqual(events, [[("wamp.subscription.on_unsubscribe", True)],
                                  [("wamp.subscription.on_unsubscribe", True),
                                   ("wamp.subscription.on_delete", True)]])

    def test_unregister_events(self):
        """Only a callee may unregister; each is announced, the last one out deletes the registration."""
        refused, events = self.removal_events(
            "registration", lambda r: message.Register(r, "com.p", invoke="roundrobin"),
            message.Unregister, message.Unregistered, errors.NO_SUCH_REGISTRATION)
        self.assertEqual(refused, [errors.NO_SUCH_REGISTRATION, True])
        self.assertEqual(events, [[("wamp.registration.on_unregister", True)],
                                  [("wamp.registration.on_unregister", True),
                                   ("wamp.registration.on_delete", True)]])

    def test_bad_arguments(self):
        """A meta procedure called with the wrong arguments says invalid_argument."""
        self.assertEqual(self.call("wamp.session.get"), errors.INVALID_ARGUMENT)


@implementer(IAuthorizer)
class RecordingAuthorizer:
    """Records what it is asked; answers from a table or raises."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = []

    def authorize(self, session, uri, action, options):
        self.asked.append((session["authid"], uri, action, options))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class AuthorizationTests(SynchronousTestCase):
    """Every register, call, subscribe and publish goes through IAuthorizer."""

    def test_default_authorizer_provides_interface(self):
        """The default authorizer implements IAuthorizer."""
        verifyObject(IAuthorizer, DefaultAuthorizer())

    def test_every_action_is_asked(self):
        """register, call, subscribe and publish each consult the authorizer with session details."""
        authorizer = RecordingAuthorizer(True)
        client = MemoryRouter(authorizer=authorizer).joined(authid="bob")
        client.send(message.Register(1, "com.p", match="prefix"))
        client.send(message.Call(2, "com.p.x"))
        client.send(message.Subscribe(3, "com.t"))
        client.send(message.Publish(4, "com.t"))
        self.assertEqual(
            [(a, u, act, o.get("match")) for a, u, act, o in authorizer.asked],
            [("bob", "com.p", "register", "prefix"), ("bob", "com.p.x", "call", None),
             ("bob", "com.t", "subscribe", "exact"), ("bob", "com.t", "publish", None)],
        )

    def test_denied(self):
        """A denial is not_authorized."""
        client = MemoryRouter(authorizer=RecordingAuthorizer({"allow": False})).joined()
        client.send(message.Subscribe(1, "com.t"))
        self.assertEqual(only(client.take(), message.Error).error, errors.NOT_AUTHORIZED)

    def test_refused_publication_without_acknowledge_is_not_answered(self):
        """A PUBLISH that did not ask for acknowledgement gets no ERROR (Autobahn would close on one)."""
        client = MemoryRouter().joined()
        client.send(message.Publish(1, "webkernel.kernel.abc.iopub.stream"))
        client.send(message.Call(2, "wamp.session.count"))
        self.assertEqual([type(m) for m in client.take()], [message.Result])
        self.assertFalse(client.channel.closed)

    def test_failing_authorizer_does_not_leak(self):
        """An authorizer that raises gives authorization_failed without its text."""
        client = MemoryRouter(authorizer=RecordingAuthorizer(RuntimeError("db password x"))).joined()
        client.send(message.Subscribe(1, "com.t"))
        error = only(client.take(), message.Error)
        self.assertEqual(error.error, errors.AUTHORIZATION_FAILED)
        self.assertNotIn("password", repr(error.args))
        self.flushLoggedErrors(RuntimeError)

    def test_deferred_answer(self):
        """An authorizer may answer later with a Deferred."""
        pending = defer.Deferred()
        client = MemoryRouter(authorizer=RecordingAuthorizer(pending)).joined()
        client.send(message.Subscribe(1, "com.t"))
        self.assertEqual(client.take(), [])
        pending.callback(True)
        only(client.take(), message.Subscribed)

    def test_cache(self):
        """A decision with cache=True is not asked again for the same URI and action."""
        authorizer = RecordingAuthorizer({"allow": True, "cache": True})
        client = MemoryRouter(authorizer=authorizer).joined()
        for request in (1, 2):
            client.send(message.Publish(request, "com.t"))
        self.assertEqual(len(authorizer.asked), 1)

    def test_cache_stays_bounded(self):
        """A session publishing on ever new topics keeps at most max_entries decisions, and is asked again for a forgotten one."""
        authorizer = RecordingAuthorizer({"allow": True, "cache": True})
        client = MemoryRouter(authorizer=authorizer).joined()
        limit = client.session.authorizations.max_entries
        for request in range(1, limit + 101):
            client.send(message.Publish(request, f"com.t{request}"))
        self.assertEqual(len(client.session.authorizations), limit)
        client.send(message.Publish(limit + 101, "com.t1"))  # the oldest: forgotten, asked again
        self.assertEqual(len(authorizer.asked), limit + 101)
        client.send(message.Publish(limit + 102, f"com.t{limit + 100}"))  # the newest: kept
        self.assertEqual(len(authorizer.asked), limit + 101)

    def test_namespace_decision_is_kept_once(self):
        """A decision for a namespace is asked once and kept as one entry for every URI in it."""
        authorizer = RecordingAuthorizer({"allow": True, "namespace": "com"})
        client = MemoryRouter(authorizer=authorizer).joined()
        for request in range(1, 2001):
            client.send(message.Publish(request, f"com.k{request}.iopub.stream"))
        client.send(message.Publish(2001, "org.x"))  # another namespace: asked
        self.assertEqual(len(authorizer.asked), 2)
        self.assertEqual(len(client.session.authorizations), 1)

    def test_host_publishing_on_many_topics_keeps_one_decision(self):
        """The kernel host's session stays at one kept decision however many kernels' topics it publishes on."""
        host = MemoryRouter().joined(principal=HOST)
        for request in range(1, 3001):
            host.send(message.Publish(request, f"webkernel.kernel.k{request}.iopub.stream",
                                      acknowledge=True))
        self.assertEqual({type(m) for m in host.take()}, {message.Published})
        self.assertEqual(len(host.session.authorizations), 1)

    def test_host_session_memory_stays_flat_over_many_topics(self):
        """Publishing on 20,000 new topics leaves the host's session no bigger (8.5 MB retained before the bound)."""
        import tracemalloc
        host = MemoryRouter().joined(principal=HOST)

        def publish(first, count):
            for request in range(first, first + count):
                host.send(message.Publish(request, f"webkernel.kernel.{request:032x}.iopub.stream"))
        publish(1, 5000)  # warm-up: the remembered URI checks fill up (a bounded cache)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        publish(10**6, 20000)
        grown = tracemalloc.get_traced_memory()[0] - before
        self.assertLess(grown, 2 * 1024 * 1024)

    def test_denials_are_not_kept(self):
        """A client refused under webkernel. is refused again each time, and its later allowed actions still work."""
        client = MemoryRouter().joined()
        for request in (1, 2):
            client.send(message.Publish(request, "webkernel.kernel.abc.iopub.stream", acknowledge=True))
            self.assertEqual(only(client.take(), message.Error).error, errors.NOT_AUTHORIZED)
        client.send(message.Publish(3, "webkernel2.x", acknowledge=True))  # not the reserved namespace
        only(client.take(), message.Published)
        client.send(message.Publish(4, "com.x", acknowledge=True))
        only(client.take(), message.Published)
        client.send(message.Publish(5, "wamp.x", acknowledge=True))
        self.assertEqual(only(client.take(), message.Error).error, errors.NOT_AUTHORIZED)
        self.assertEqual(len(client.session.authorizations), 2)

    def test_namespace_is_not_used_for_patterns(self):
        """A namespace decision for a prefix subscription is kept for that pattern only."""
        authorizer = RecordingAuthorizer({"allow": True, "cache": True, "namespace": "com"})
        client = MemoryRouter(authorizer=authorizer).joined()
        client.send(message.Subscribe(1, "com.a", match="prefix"))
        client.send(message.Subscribe(2, "com.b", match="prefix"))
        client.send(message.Subscribe(3, "com.a", match="prefix"))
        self.assertEqual([uri for _, uri, _, _ in authorizer.asked], ["com.a", "com.b"])

    def test_reserved_namespaces(self):
        """Clients may not register or publish under wamp. or webkernel.; the host may."""
        router = MemoryRouter()
        client = router.joined()
        for msg in (message.Register(1, "wamp.session.count"),
                    message.Publish(2, "wamp.session.on_join", acknowledge=True),
                    message.Register(3, "webkernel.kernels.start"),
                    message.Publish(4, "webkernel.kernel.abc.iopub.stream", acknowledge=True),
                    message.Register(5, "webkernel", match="prefix"),
                    message.Register(6, "", match="prefix"),
                    message.Register(7, ".kernels.start", match="wildcard")):
            client.send(msg)
            self.assertEqual(only(client.take(), message.Error).error, errors.NOT_AUTHORIZED, msg)
        authorizer = DefaultAuthorizer()
        host = {"authrole": KERNEL_HOST_ROLE}
        self.assertTrue(authorizer.authorize(host, "webkernel.kernels.start", "register", {})["allow"])
        self.assertTrue(authorizer.authorize({"authrole": "user"}, "webkernel.kernels.start", "call", {})["allow"])

    def test_notebooks_role_registers_notebook_procedures_only(self):
        """The notebook session's role may register webkernel.notebooks.* and nothing of the kernels'."""
        notebooks = MemoryRouter().joined(Principal("notebooks", NOTEBOOKS_ROLE, "local"))
        notebooks.send(message.Register(1, "webkernel.notebooks.list"))
        self.assertIsInstance(only(notebooks.take(), message.Registered), message.Registered)
        for msg in (message.Register(2, "webkernel.kernels.start"),
                    message.Register(3, "webkernel.kernel.abc.execute"),
                    message.Register(4, "webkernel.kernel.", match="prefix"),
                    message.Register(5, "webkernel.notebooks", match="prefix"),
                    message.Register(6, "com.example.x"),
                    message.Publish(7, "webkernel.kernel.abc.iopub.stream", acknowledge=True),
                    message.Publish(8, "webkernel.kernels.events", acknowledge=True),
                    message.Publish(9, "webkernel.notebooks.changed", acknowledge=True)):
            notebooks.send(msg)
            self.assertEqual(only(notebooks.take(), message.Error).error, errors.NOT_AUTHORIZED, msg)


class OutOfBandAuthenticationTests(SynchronousTestCase):
    """Router.authenticate: credentials presented outside WAMP meet the sessions' authenticators."""

    def test_ticket(self):
        """The service token is a ticket for any authid; a wrong one, or the host's authid, is refused."""
        router = MemoryRouter(token="secret", anonymous=False, host_token="host-secret").router
        self.assertEqual(router.authenticate("realm1", "ticket", "jsonrpc", "secret"),
                         Principal("jsonrpc", "user", "ticket"))
        self.assertIsNone(router.authenticate("realm1", "ticket", "jsonrpc", "wrong"))
        self.assertIsNone(router.authenticate("realm1", "ticket", "webkernel_host", "secret"))
        self.assertIsNone(router.authenticate("realm1", "anonymous", "jsonrpc-anonymous"))
        self.assertIsNone(router.authenticate("other", "ticket", "jsonrpc", "secret"))

    def test_anonymous(self):
        """Where the realm is open, no secret is needed; where only anonymous is, a ticket is refused."""
        router = MemoryRouter(anonymous=True).router
        self.assertEqual(router.authenticate("realm1", "anonymous", "jsonrpc-anonymous"),
                         Principal("jsonrpc-anonymous", "anonymous", "anonymous"))
        self.assertIsNone(router.authenticate("realm1", "ticket", "jsonrpc", "anything"))


class CallerFeatureTests(SynchronousTestCase):
    """Features depend on what the peer announced."""

    def test_supports(self):
        """A session knows which features its peer announced."""
        client = MemoryRouter().client().join(roles={"caller": RoleCallerFeatures(call_canceling=True)})
        self.assertTrue(client.session.supports("caller", "call_canceling"))
        self.assertFalse(client.session.supports("callee", "call_canceling"))


class SerializationSharingTests(SynchronousTestCase):
    """An EVENT fanned out to many WebSocket subscribers is encoded once per format."""

    def test_websocket_serializers_are_shared(self):
        """Every connection of a format uses the same serializer, so the byte cache hits."""
        from broker.router.wire import encode
        from broker.transport import WEBSOCKET_SERIALIZERS

        event = message.Event(1, 2, args=["x" * 100])
        serializer = WEBSOCKET_SERIALIZERS["wamp.2.json"]
        first = encode(serializer, event)
        self.assertIs(encode(serializer, event), first)
        self.assertEqual(len(event._serialized), 1)


class BadInputRegressionTests(SynchronousTestCase):
    """What the fuzz tests (tests/test_fuzz_*.py) found, pinned down without a socket."""

    def test_unacknowledged_publication_with_bad_uri_is_not_answered(self):
        """A PUBLISH with an invalid URI and no acknowledge gets no ERROR; with it, it does."""
        from autobahn.wamp.serializer import JsonSerializer

        from broker.router.wire import decode
        client = MemoryRouter().joined()
        for raw, answered in ((b'[16, 1, {}, "a b"]', False),
                              (b'[16, 2, {"acknowledge": true}, "a b"]', True)):
            (item,) = decode(JsonSerializer(), raw, False)
            client.session.bad_request(item.request_type, item.request, item.reason, item.answer)
            self.assertEqual(len(client.take()), int(answered), raw)
        self.assertFalse(client.channel.closed)

    def test_lone_surrogate_in_json_is_a_protocol_violation(self):
        """A JSON string with an unpaired surrogate escape is refused; a paired one is text."""
        from autobahn.wamp.serializer import JsonSerializer

        from broker.router.wire import decode
        with self.assertRaises(errors.ProtocolViolation):
            decode(JsonSerializer(), b'[16, 1, {}, "com.t", ["\\ud800"]]', False)
        (publish,) = decode(JsonSerializer(), b'[16, 1, {}, "com.t", ["\\ud83d\\ude00"]]', False)
        self.assertEqual(publish.args, ["\U0001F600"])

    def test_a_uri_may_not_end_in_a_newline(self):
        """com.x followed by a newline is not com.x ("$" alone would let it through)."""
        client = MemoryRouter().joined()
        client.send(message.Subscribe(1, "com.x\n"))
        self.assertEqual(only(client.take(), message.Error).error, errors.INVALID_URI)

    def test_remembered_uri_answers_do_not_change_them(self):
        """check_uri gives the same answer the second time, for short URIs (remembered) and long ones (not)."""
        from broker.router import uri as uris_module
        long_valid = "com." + "x" * uris_module.REMEMBERED_URI_LENGTH
        for _ in range(2):
            self.assertEqual(uris_module.check_uri("com.x"), "com.x")
            self.assertEqual(uris_module.check_uri(long_valid), long_valid)
            for bad in ("com.x\n", "com..x", "com.x " * 100, "com..x" + "y" * 300):
                self.assertRaises(errors.InvalidUri, uris_module.check_uri, bad)
            self.assertEqual(uris_module.check_uri("com..x", "wildcard"), "com..x")
        remembered = uris_module._remembered_valid.cache_info().currsize
        uris_module.check_uri("com." + "z" * 400)
        self.assertEqual(uris_module._remembered_valid.cache_info().currsize, remembered)

    def test_a_session_closed_while_welcomed_does_not_stay_in_the_realm(self):
        """If sending the WELCOME closes the connection (it does not fit), the session is gone."""
        router = MemoryRouter()
        client = router.client()
        original = client.channel.send

        def refuse_welcome(msg):
            original(msg)
            if isinstance(msg, message.Welcome):
                client.session.connection_lost()
        client.channel.send = refuse_welcome
        client.join()
        self.assertEqual(router.realm.sessions, {})

    def test_an_invocation_the_callee_cannot_receive_fails_the_call(self):
        """The callee's channel refuses the INVOCATION: the caller gets that error, nothing leaks."""
        router = MemoryRouter()
        callee, caller = router.joined(), router.joined()
        callee.send(message.Register(1, "com.echo"))
        callee.take()

        def refuse(msg):
            raise errors.InvalidPayload("the INVOCATION carries a value the callee cannot take")
        callee.channel.send = refuse
        caller.send(message.Call(2, "com.echo", args=[2**70], timeout=1000))
        error = only(caller.take(), message.Error)
        self.assertEqual((error.request, error.error), (2, errors.INVALID_PAYLOAD))
        self.assertEqual(len(router.realm.dealer.calls), 0)
        router.clock.advance(2)
        self.assertEqual(caller.take(), [])  # the timeout was canceled with the call


class RunDueTests(SynchronousTestCase):
    """broker.testing.run_due, the settling step of tests on a MemoryRouter's clock."""

    def test_runs_what_is_due_now_and_nothing_later(self):
        """Calls due now run, and the calls they schedule for now; a later one waits, and time stands still."""
        clock, ran = Clock(), []
        clock.callLater(0, lambda: clock.callLater(0, ran.append, "chained"))
        clock.callLater(0, ran.append, "due")
        clock.callLater(1, ran.append, "later")
        run_due(clock)
        self.assertEqual((ran, clock.seconds()), (["due", "chained"], 0))
