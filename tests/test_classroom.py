"""Multi-user rules: the classroom authorizer alone, then with the real KernelHost and router.

Students alice and bob, teacher tess, observer olga. Each rule has a test
that attacks it: bob tries alice's kernel by exact URI, prefix and wildcard,
for every action; the observer tries to change things.
"""

from autobahn.wamp import message, types
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from broker import errors
from broker.auth import KERNEL_HOST_ROLE, NOTEBOOKS_ROLE, IAuthorizer, Principal
from broker.classroom import roles
from broker.classroom.authorizer import ClassroomAuthorizer
from broker.classroom.owners import KernelOwners
from broker.classroom.policy import ClassroomPolicy
from broker import tap
from broker.kernel import uris
from broker.kernel.host import KernelHost
from broker.router.local import attach
from broker.router.router import Router
from broker.router.session import RouterSession
from broker.testing import CLIENT_ROLES, MemoryChannel, run_due
from tests.test_kernel_host_units import KERNEL_INFO, ChannelsFactory, FakeLauncher, run_execute, stream

A = "a" * 32  # alice's kernel
B = "b" * 32  # bob's kernel
UNKNOWN = "c" * 32
CHANGING = ("execute", "eval_cell", "input", "complete", "inspect", "is_complete",
            "interrupt", "restart", "shutdown", "comm", "comm_info")
READING = ("outputs", "reply", "kernel_info", "history")


def who(authid, authrole):
    return {"session": 1, "authid": authid, "authrole": authrole, "authmethod": "wampcra",
            "authprovider": "users_file", "authextra": None}


ALICE, BOB = who("alice", "student"), who("bob", "student")
TESS, OLGA = who("tess", "teacher"), who("olga", "observer")


class AuthorizerTests(SynchronousTestCase):
    """The decisions of ClassroomAuthorizer, URI by URI."""

    def setUp(self):
        self.owners = KernelOwners()
        self.owners.event("started", {"id": A, "owner": "alice"})
        self.owners.event("started", {"id": B, "owner": "bob"})
        self.authorizer = ClassroomAuthorizer(self.owners)

    def allowed(self, session, uri, action, match="exact"):
        decision = self.authorizer.authorize(session, uri, action, {"match": match})
        return decision if isinstance(decision, bool) else decision["allow"]

    def test_interface(self):
        """It is an IAuthorizer."""
        verifyObject(IAuthorizer, self.authorizer)

    def test_student_calls_only_own_kernels(self):
        """bob may call every procedure of his kernel and none of alice's."""
        for name in CHANGING + READING:
            self.assertTrue(self.allowed(BOB, uris.kernel_procedure(B, name), "call"), name)
            self.assertFalse(self.allowed(BOB, uris.kernel_procedure(A, name), "call"), name)

    def test_student_subscribes_only_to_own_kernels(self):
        """bob's subscriptions that could reach alice's kernel topics are refused, by URI, prefix and wildcard."""
        refused = [
            (f"webkernel.kernel.{A}.iopub.stream", "exact"),
            (f"webkernel.kernel.{A}.stdin", "exact"),
            (f"webkernel.kernel.{A}.iopub", "prefix"),
            (f"webkernel.kernel.{A}", "prefix"),
            (f"webkernel.kernel.{A[:10]}", "prefix"),
            ("webkernel.kernel.", "prefix"), ("webkernel.kernel", "prefix"),
            ("webkernel.", "prefix"), ("webkernel", "prefix"), ("web", "prefix"), ("", "prefix"),
            ("webkernel.kernel..iopub.stream", "wildcard"),
            (f"..{A}.iopub.stream", "wildcard"),
            (f"webkernel..{A}.iopub.stream", "wildcard"),
            (f"webkernel.kernel.{A}.iopub.", "wildcard"),
            ("....", "wildcard"),
            ("webkernel.kernels.events", "prefix"),
        ]
        for uri, match in refused:
            self.assertFalse(self.allowed(BOB, uri, "subscribe", match), (uri, match))
        for uri, match in [(f"webkernel.kernel.{B}.iopub.stream", "exact"),
                           (f"webkernel.kernel.{B}.iopub", "prefix"),
                           (f"webkernel.kernel.{B}", "prefix"),
                           (f"webkernel.kernel.{B}..stream", "wildcard"),
                           ("webkernel.kernels.events", "exact"),
                           ("com.example", "prefix")]:
            self.assertTrue(self.allowed(BOB, uri, "subscribe", match), (uri, match))

    def test_prefix_of_a_whole_id_must_not_reach_a_longer_one(self):
        """A prefix ending in an owned id (no dot) is allowed only for a full-length id: it would match longer ids too."""
        self.owners.event("started", {"id": "abc", "owner": "bob"})
        self.owners.event("started", {"id": "abcdef", "owner": "alice"})
        self.assertFalse(self.allowed(BOB, "webkernel.kernel.abc", "subscribe", "prefix"))
        self.assertTrue(self.allowed(BOB, "webkernel.kernel.abc.", "subscribe", "prefix"))

    def test_students_register_and_publish_nothing(self):
        """No student registers or publishes, under webkernel. (exact, prefix, wildcard) or anywhere."""
        for action in ("register", "publish"):
            for uri, match in [(uris.kernel_procedure(A, "execute"), "exact"),
                               (uris.kernel_topic(A, "iopub.stream"), "exact"),
                               (uris.kernel_procedure(B, "execute"), "exact"),
                               ("webkernel.", "prefix"), ("webkernel.kernel.", "prefix"),
                               (f"webkernel.kernel..execute", "wildcard"),
                               ("..", "wildcard"), ("com.example.x", "exact")]:
                self.assertFalse(self.allowed(BOB, uri, action, match), (action, uri, match))

    def test_students_and_observers_have_no_meta_api(self):
        """wamp.session.*, wamp.subscription.*, wamp.registration.* calls and meta events: teachers only."""
        for uri in ("wamp.session.list", "wamp.session.get", "wamp.subscription.list",
                    "wamp.subscription.list_subscribers", "wamp.registration.list",
                    "wamp.registration.match"):
            for session in (BOB, OLGA):
                self.assertFalse(self.allowed(session, uri, "call"), (session["authid"], uri))
            self.assertTrue(self.allowed(TESS, uri, "call"), uri)
        for uri, match in [("wamp.session.on_join", "exact"), ("wamp.", "prefix"),
                           ("wamp.subscription.on_create", "exact"), (".session.on_join", "wildcard")]:
            for session in (BOB, OLGA):
                self.assertFalse(self.allowed(session, uri, "subscribe", match), uri)

    def test_observer_reads_but_changes_nothing(self):
        """The observer watches every kernel and reads its history; runs and changes nothing."""
        for name in CHANGING:
            self.assertFalse(self.allowed(OLGA, uris.kernel_procedure(A, name), "call"), name)
        for name in READING:
            self.assertTrue(self.allowed(OLGA, uris.kernel_procedure(A, name), "call"), name)
        self.assertFalse(self.allowed(OLGA, uris.KERNELS_START, "call"))
        self.assertTrue(self.allowed(OLGA, uris.KERNELS_LIST, "call"))
        self.assertTrue(self.allowed(OLGA, "webkernel.kernel.", "subscribe", "prefix"))
        for action in ("register", "publish"):
            self.assertFalse(self.allowed(OLGA, "com.example.x", action))

    def test_teacher_does_everything_but_impersonate_the_service(self):
        """The teacher calls and watches every kernel, but registers and publishes nothing under webkernel. or wamp."""
        for name in CHANGING + READING:
            self.assertTrue(self.allowed(TESS, uris.kernel_procedure(A, name), "call"))
        self.assertTrue(self.allowed(TESS, "webkernel.kernel.", "subscribe", "prefix"))
        self.assertTrue(self.allowed(TESS, "webkernel.notebooks.save", "call"))
        self.assertTrue(self.allowed(TESS, "com.example.x", "register"))
        for uri, match in [(uris.kernel_procedure(A, "execute"), "exact"), ("webkernel.", "prefix"),
                           ("wamp.x", "exact"), ("", "prefix"), (".kernel", "wildcard")]:
            self.assertFalse(self.allowed(TESS, uri, "register", match), uri)
            self.assertFalse(self.allowed(TESS, uri, "publish", match), uri)

    def test_notebook_calls_by_role_disclose_the_caller(self):
        """Students may list, get and save (in their own folder: the service is told who calls); observers only read; nothing else under webkernel.notebooks."""
        for name in ("list", "get", "save"):
            decision = self.authorizer.authorize(BOB, f"webkernel.notebooks.{name}", "call", {})
            self.assertEqual((decision["allow"], decision["disclose"]), (True, True), name)
        self.assertTrue(self.allowed(OLGA, "webkernel.notebooks.get", "call"))
        self.assertTrue(self.authorizer.authorize(OLGA, "webkernel.notebooks.list", "call", {})["disclose"])
        self.assertFalse(self.allowed(OLGA, "webkernel.notebooks.save", "call"))
        self.assertFalse(self.allowed(BOB, "webkernel.notebooks.delete", "call"))
        for session in (BOB, OLGA):
            self.assertFalse(self.allowed(session, "webkernel.notebooks.list", "register"))

    def test_watch_share(self):
        """A watch share lets bob subscribe to alice's kernel and read it, not run or share it; nothing of it is cached."""
        self.owners.event("shared", {"id": A, "owner": "alice", "shared": {"bob": "watch"}})
        for uri, match in [(uris.kernel_topic(A, "iopub.stream"), "exact"),
                           (f"webkernel.kernel.{A}", "prefix"),
                           (f"webkernel.kernel.{A}..stream", "wildcard")]:
            decision = self.authorizer.authorize(BOB, uri, "subscribe", {"match": match})
            self.assertEqual((decision["allow"], decision["cache"]), (True, False), uri)
        for name in READING:
            self.assertTrue(self.allowed(BOB, uris.kernel_procedure(A, name), "call"), name)
        for name in CHANGING + ("share", "unshare"):
            self.assertFalse(self.allowed(BOB, uris.kernel_procedure(A, name), "call"), name)
        self.assertFalse(self.allowed(who("carl", "student"), uris.kernel_topic(A, "stdin"), "subscribe"))

    def test_full_share(self):
        """A full share lets bob do all alice may, but share or unshare her kernel."""
        self.owners.event("shared", {"id": A, "owner": "alice", "shared": {"bob": "full"}})
        for name in CHANGING + READING:
            decision = self.authorizer.authorize(BOB, uris.kernel_procedure(A, name), "call", {})
            self.assertEqual((decision["allow"], decision["cache"]), (True, False), name)
        for name in ("share", "unshare"):
            self.assertFalse(self.allowed(BOB, uris.kernel_procedure(A, name), "call"))
            self.assertTrue(self.allowed(ALICE, uris.kernel_procedure(A, name), "call"))
            self.assertTrue(self.allowed(TESS, uris.kernel_procedure(A, name), "call"))
            self.assertFalse(self.allowed(OLGA, uris.kernel_procedure(A, name), "call"))

    def test_refusals_of_non_owners_are_not_cached(self):
        """bob's refusal on alice's kernel is asked again (a share may come); alice's allow is kept."""
        refusal = self.authorizer.authorize(BOB, uris.kernel_procedure(A, "execute"), "call", {})
        self.assertEqual((refusal["allow"], refusal["cache"]), (False, False))
        allow = self.authorizer.authorize(ALICE, uris.kernel_procedure(A, "execute"), "call", {})
        self.assertEqual((allow["allow"], allow["cache"]), (True, True))

    def test_revocations_are_reported(self):
        """Users dropped from a kernel's shares are reported; a downgrade or a new share is not."""
        revoked = []
        self.owners.on_revoked = lambda kernel_id, users: revoked.append((kernel_id, users))
        self.owners.event("shared", {"id": A, "owner": "alice", "shared": {"bob": "full", "carl": "watch"}})
        self.owners.event("shared", {"id": A, "owner": "alice", "shared": {"bob": "watch", "carl": "watch"}})
        self.assertEqual(revoked, [])
        self.owners.event("shared", {"id": A, "owner": "alice", "shared": {"carl": "watch"}})
        self.owners.event("state", {"id": A, "owner": "alice", "shared": {}})
        self.assertEqual(revoked, [(A, ["bob"]), (A, ["carl"])])
        self.assertIsNone(self.owners.share(A, "carl"))

    def test_unknown_kernel_is_refused_and_not_cached(self):
        """A kernel whose owner is unknown is refused, and the refusal is asked again next time."""
        decision = self.authorizer.authorize(BOB, uris.kernel_procedure(UNKNOWN, "execute"), "call", {})
        self.assertEqual((decision["allow"], decision["cache"]), (False, False))
        self.owners.event("started", {"id": UNKNOWN, "owner": "bob"})
        self.assertTrue(self.allowed(BOB, uris.kernel_procedure(UNKNOWN, "execute"), "call"))

    def test_owners_are_fixed_and_forgotten_when_gone(self):
        """A later event cannot change a kernel's owner; 'stopped' and 'dead' forget it, a restart re-learns it."""
        self.owners.event("state", {"id": A, "owner": "bob"})
        self.assertEqual(self.owners.owner(A), "alice")
        self.owners.event("stopped", {"id": A, "owner": "alice"})
        self.assertFalse(self.owners.known(A))
        self.owners.event("dead", {"id": B, "owner": "bob"})
        self.assertFalse(self.owners.known(B))
        self.owners.event("restarting", {"id": B, "owner": "bob"})
        self.assertEqual(self.owners.owner(B), "bob")
        for bad in (None, {}, {"id": 5}, "x"):
            self.owners.event("started", bad)
        self.assertEqual(len(self.owners), 1)

    def test_service_roles_and_strangers(self):
        """The host publishes under webkernel.; the tracker only subscribes to events; other roles get nothing."""
        host = who("webkernel_host", KERNEL_HOST_ROLE)
        self.assertTrue(self.allowed(host, uris.kernel_topic(A, "iopub.stream"), "publish"))
        self.assertFalse(self.allowed(host, "wamp.session.on_join", "publish"))
        self.assertTrue(self.allowed(who("nb", NOTEBOOKS_ROLE), "webkernel.notebooks.get", "register"))
        tracker = who(roles.TRACKER_AUTHID, roles.TRACKER_ROLE)
        self.assertTrue(self.allowed(tracker, uris.KERNELS_EVENTS, "subscribe"))
        self.assertFalse(self.allowed(tracker, uris.kernel_topic(A, "iopub.stream"), "subscribe"))
        self.assertFalse(self.allowed(who("x", "user"), uris.KERNELS_LIST, "call"))


class UserClient:
    """A joined user session on the in-memory router."""

    def __init__(self, router, authid, authrole):
        self.channel = MemoryChannel(f"tcp4:127.0.0.1:{len(authid)}")
        self.session = RouterSession(router, self.channel,
                                     principal=Principal(authid, authrole, "wampcra"))
        self.session.message_received(message.Hello("webkernel", CLIENT_ROLES))
        self.requests = 0
        self.events = []  # every EVENT received, kept across take()
        self.take()

    def send(self, msg):
        self.session.message_received(msg)

    def take(self):
        taken, self.channel.sent[:] = list(self.channel.sent), []
        self.events.extend(m for m in taken if isinstance(m, message.Event))
        return taken

    def take_events(self):
        self.take()
        events, self.events = self.events, []
        return events

    def next(self):
        self.requests += 1
        return self.requests


class ClassroomTestCase(SynchronousTestCase):
    """The router with the classroom authorizer and owner tracker, and the real KernelHost on fakes."""

    def setUp(self):
        self.clock = Clock()
        self.owners = KernelOwners()
        config = {"token": None, "anonymous": False, "host_token": None}
        self.router = Router.single_realm("webkernel", ClassroomAuthorizer(self.owners),
                                          self.clock, config, {})
        tap._track_owners(self.router, "webkernel", self.owners)  # the service's own wiring
        self.channels = ChannelsFactory()
        self.host = KernelHost(types.ComponentConfig(realm="webkernel"), FakeLauncher(),
                               self.channels, self.clock, max_kernels=50,
                               policy=ClassroomPolicy(2))
        attach(self.router, self.host, Principal("webkernel_host", KERNEL_HOST_ROLE, "local"),
               self.clock)
        self.settle()
        self.alice = self.user("alice", "student")
        self.bob = self.user("bob", "student")
        self.tess = self.user("tess", "teacher")
        self.olga = self.user("olga", "observer")

    def user(self, authid, authrole):
        return UserClient(self.router, authid, authrole)

    def settle(self):
        run_due(self.clock)

    def answers(self, client, request):
        return [m for m in client.take() if getattr(m, "request", None) == request]

    def call(self, client, procedure, *args, **kwargs):
        request = client.next()
        client.send(message.Call(request, procedure, args=list(args) or None,
                                 kwargs=kwargs or None))
        self.settle()
        return self.answers(client, request)[-1]

    def start(self, client):
        """Start a kernel as *client* and make it ready; its model."""
        request = client.next()
        client.send(message.Call(request, uris.KERNELS_START))
        self.settle()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        answer = self.answers(client, request)[-1]
        assert isinstance(answer, message.Result), answer
        return answer.args[0]

    def subscribe(self, client, topic, match=None):
        request = client.next()
        client.send(message.Subscribe(request, topic, match=match))
        return self.answers(client, request)[-1]

    def assertRefused(self, answer):
        self.assertIsInstance(answer, message.Error)
        self.assertEqual(answer.error, errors.NOT_AUTHORIZED)


class ClassroomTests(ClassroomTestCase):
    """Students A and B, teacher, observer, against the real kernel host."""

    def test_owner_is_the_starting_user(self):
        """The kernel's owner is the authid of who started it, and the tracker knows it at once."""
        model = self.start(self.alice)
        self.assertEqual(model["owner"], "alice")
        self.assertEqual(self.owners.owner(model["id"]), "alice")

    def test_other_student_cannot_use_the_kernel(self):
        """bob cannot call, subscribe to, register or publish on alice's kernel; alice can call it."""
        kernel = self.start(self.alice)["id"]
        self.assertIsInstance(self.call(self.alice, uris.kernel_procedure(kernel, "outputs")),
                              message.Result)
        for name in CHANGING + READING:
            self.assertRefused(self.call(self.bob, uris.kernel_procedure(kernel, name), code="1"))
        for topic, match in [(uris.kernel_topic(kernel, "iopub.stream"), None),
                             (uris.kernel_topic(kernel, "iopub"), "prefix"),
                             ("webkernel.kernel.", "prefix"),
                             ("webkernel.kernel..iopub.stream", "wildcard")]:
            self.assertRefused(self.subscribe(self.bob, topic, match))
        request = self.bob.next()
        self.bob.send(message.Register(request, uris.kernel_procedure(kernel, "execute")))
        self.assertRefused(self.answers(self.bob, request)[-1])
        request = self.bob.next()
        self.bob.send(message.Publish(request, uris.kernel_topic(kernel, "iopub.stream"),
                                      kwargs={"fake": True}, acknowledge=True))
        self.assertRefused(self.answers(self.bob, request)[-1])

    def test_list_shows_only_what_one_may_see(self):
        """Students list their own kernels; teacher and observer list all."""
        a, b = self.start(self.alice)["id"], self.start(self.bob)["id"]
        listed = lambda client: sorted(m["id"] for m in self.call(client, uris.KERNELS_LIST).args[0])
        self.assertEqual(listed(self.alice), [a])
        self.assertEqual(listed(self.bob), [b])
        self.assertEqual(listed(self.tess), sorted([a, b]))
        self.assertEqual(listed(self.olga), sorted([a, b]))

    def test_events_reach_only_those_who_may_see(self):
        """alice's kernel's lifecycle events reach alice, the teacher and the observer once each, never bob."""
        for client in (self.alice, self.bob, self.tess, self.olga):
            self.assertIsInstance(self.subscribe(client, uris.KERNELS_EVENTS), message.Subscribed)
        kernel = self.start(self.alice)["id"]
        self.settle()
        events = {c: [m.kwargs["event"] for m in c.take_events()
                      if m.kwargs["kernel"]["id"] == kernel]
                  for c in (self.alice, self.bob, self.tess, self.olga)}
        self.assertEqual(events[self.bob], [])
        for client in (self.alice, self.tess, self.olga):
            self.assertEqual(events[client][:2], ["started", "ready"], client.session.authid)
            self.assertEqual(len(events[client]), len(events[self.alice]))

    def test_teacher_kernel_events_reach_the_teacher_once(self):
        """A teacher's own kernel's events reach the teacher once (not as owner and as teacher)."""
        self.subscribe(self.tess, uris.KERNELS_EVENTS)
        kernel = self.start(self.tess)["id"]
        started = [m for m in self.tess.take_events()
                   if m.kwargs["event"] == "started" and m.kwargs["kernel"]["id"] == kernel]
        self.assertEqual(len(started), 1)

    def test_teacher_and_observer_see_output_live(self):
        """The teacher's and observer's prefix subscriptions get alice's output as it happens."""
        kernel = self.start(self.alice)["id"]
        for client in (self.tess, self.olga):
            self.assertIsInstance(self.subscribe(client, "webkernel.kernel.", "prefix"),
                                  message.Subscribed)
        request = self.alice.next()
        self.alice.send(message.Call(request, uris.kernel_procedure(kernel, "execute"),
                                     args=["print('hi')"]))
        self.settle()
        shell = [m for c, m in self.channels.last.sent if m["msg_type"] == "execute_request"][-1]
        run_execute(self.channels.last, shell, outputs=[stream("hi\n")])
        self.settle()
        for client in (self.tess, self.olga):
            streams = [m.kwargs for m in client.take_events() if m.kwargs.get("msg_type") == "stream"]
            self.assertEqual([k["content"]["text"] for k in streams], ["hi\n"], client.session.authid)
            self.assertEqual(streams[0]["caller"]["authid"], "alice")

    def test_observer_changes_nothing(self):
        """The observer cannot start, execute, answer input, interrupt, restart or shut down."""
        kernel = self.start(self.alice)["id"]
        self.assertRefused(self.call(self.olga, uris.KERNELS_START))
        for name in CHANGING:
            self.assertRefused(self.call(self.olga, uris.kernel_procedure(kernel, name), code="1"))
        self.assertIsInstance(self.call(self.olga, uris.kernel_procedure(kernel, "outputs")),
                              message.Result)

    def test_teacher_may_shut_down_any_kernel(self):
        """The teacher shuts alice's kernel down; it is gone from alice's list."""
        kernel = self.start(self.alice)["id"]
        request = self.tess.next()
        self.tess.send(message.Call(request, uris.kernel_procedure(kernel, "shutdown")))
        self.settle()
        self.host.launcher.launched[-1].exit()
        self.settle()
        self.assertIsInstance(self.answers(self.tess, request)[-1], message.Result)
        self.assertEqual(self.call(self.alice, uris.KERNELS_LIST).args[0], [])

    def test_quota_holds_under_parallel_starts(self):
        """Ten starts sent at once by one student: two start, eight get kernel_limit."""
        requests = [self.alice.next() for _ in range(10)]
        for request in requests:
            self.alice.send(message.Call(request, uris.KERNELS_START, kwargs={"wait": False}))
        self.settle()
        answers = [m for m in self.alice.take() if getattr(m, "request", None) in requests]
        self.assertEqual(sum(isinstance(m, message.Result) for m in answers), 2)
        limits = [m for m in answers if isinstance(m, message.Error)]
        self.assertEqual([m.error for m in limits], [errors.KERNEL_LIMIT] * 8)
        self.assertIn("--max-kernels-per-user", limits[0].args[0])
        self.assertIsInstance(self.call(self.bob, uris.KERNELS_START, wait=False), message.Result)

    def test_teachers_have_no_per_user_quota(self):
        """The per-user limit is for students only."""
        for _ in range(3):
            self.assertIsInstance(self.call(self.tess, uris.KERNELS_START, wait=False),
                                  message.Result)

    def test_owner_map_holds_live_kernels_only(self):
        """A start that fails (here: never ready) leaves no owner entry behind; a stopped kernel neither."""
        self.assertIsInstance(self.call(self.alice, uris.KERNELS_START, wait=False), message.Result)
        self.assertEqual(len(self.owners), 1)
        self.channels.last.nudges[-1].errback(defer.TimeoutError("no kernel_info_reply"))
        self.settle()
        self.flushLoggedErrors()
        self.assertEqual(len(self.owners), 0)


class SharingTests(ClassroomTestCase):
    """alice shares her kernel with bob, watch-only or full, and revokes it."""

    def share(self, client, kernel, user, access=None):
        kwargs = {"user": user} if access is None else {"user": user, "access": access}
        return self.call(client, uris.kernel_procedure(kernel, "share"), **kwargs)

    def run_cell(self, client, kernel, text):
        """*client* executes a cell that prints *text* (played by the fake kernel)."""
        request = client.next()
        client.send(message.Call(request, uris.kernel_procedure(kernel, "execute"),
                                 args=[f"print({text!r})"]))
        self.settle()
        shell = [m for c, m in self.channels.last.sent if m["msg_type"] == "execute_request"][-1]
        run_execute(self.channels.last, shell, outputs=[stream(text)])
        self.settle()
        return self.answers(client, request)

    def streams(self, client):
        return [m.kwargs["content"]["text"] for m in client.take_events()
                if m.kwargs.get("msg_type") == "stream"]

    def test_watch_share_and_revoke(self):
        """Shared watch-only, bob lists, hears of and watches alice's kernel but cannot run it; revoked, he gets nothing more."""
        kernel = self.start(self.alice)["id"]
        self.subscribe(self.bob, uris.KERNELS_EVENTS)
        model = self.share(self.alice, kernel, "bob", "watch").args[0]
        self.assertEqual(model["shared"], {"bob": "watch"})
        self.assertEqual([e.kwargs["event"] for e in self.bob.take_events()], ["shared"])
        self.assertEqual([m["id"] for m in self.call(self.bob, uris.KERNELS_LIST).args[0]], [kernel])
        self.assertIsInstance(self.subscribe(self.bob, f"webkernel.kernel.{kernel}.iopub", "prefix"),
                              message.Subscribed)
        self.assertRefused(self.call(self.bob, uris.kernel_procedure(kernel, "execute"), code="1"))
        self.run_cell(self.alice, kernel, "one\n")
        self.assertEqual(self.streams(self.bob), ["one\n"])
        self.call(self.alice, uris.kernel_procedure(kernel, "unshare"), user="bob")
        self.run_cell(self.alice, kernel, "two\n")
        self.assertEqual(self.streams(self.bob), [])
        self.assertEqual(self.call(self.bob, uris.KERNELS_LIST).args[0], [])
        self.assertRefused(self.subscribe(self.bob, uris.kernel_topic(kernel, "iopub.stream")))

    def test_full_share_runs_code(self):
        """Shared fully, bob runs code in alice's kernel (the output says it was him) but cannot share it on."""
        kernel = self.start(self.alice)["id"]
        self.share(self.alice, kernel, "bob", "full")
        answers = self.run_cell(self.bob, kernel, "by bob\n")
        self.assertIsInstance(answers[-1], message.Result)
        self.assertEqual(answers[-1].kwargs["outputs"][-1]["caller"]["authid"], "bob")
        self.assertRefused(self.share(self.bob, kernel, "carl", "watch"))

    def test_only_owner_and_teacher_share(self):
        """bob cannot share alice's kernel with himself; the teacher can share it; bad access is invalid_argument."""
        kernel = self.start(self.alice)["id"]
        self.assertRefused(self.share(self.bob, kernel, "bob", "full"))
        self.assertIsInstance(self.share(self.tess, kernel, "bob", "watch"), message.Result)
        bad = self.share(self.alice, kernel, "bob", "admin")
        self.assertEqual(bad.error, errors.INVALID_ARGUMENT)
