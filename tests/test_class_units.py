"""The live classroom's parts alone: the roster, the idle culler on a fake clock, the authorizer's rules, on_behalf_of."""

import shutil
import tempfile
from types import SimpleNamespace

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.auth import TEACHING_ROLE
from broker.classroom.authorizer import ClassroomAuthorizer
from broker.classroom.owners import KernelOwners
from broker.kernel.procedures import delegated_caller
from broker.teaching import uris
from broker.teaching.culling import IdleCuller
from broker.teaching.roster import MAX_TEXT, ClassRoster
from tests.test_classroom import ALICE, OLGA, TESS, who

A = "a" * 32
SERVICE = who("webkernel_teaching", TEACHING_ROLE)


def model(kernel_id=A, owner="alice", state="idle"):
    return {"id": kernel_id, "owner": owner, "execution_state": state}


class RosterTests(SynchronousTestCase):
    """ClassRoster keeps what the teacher's page shows, bounded."""

    def setUp(self):
        self.roster = ClassRoster(lambda: {"alice": "student", "tess": "teacher"})

    def test_signed_in_counts_sessions(self):
        """A user is signed in while any of their sessions is; service sessions are not people."""
        self.assertEqual(self.roster.joined(1, "alice", "student"), ["alice"])
        self.roster.joined(2, "alice", "student")
        self.assertEqual(self.roster.joined(3, "webkernel_host", "webkernel_host"), [])
        self.roster.left(1)
        self.assertEqual(self.roster.tile("alice")["signed_in"], 1)
        self.roster.left(2)
        self.assertEqual(self.roster.tile("alice")["signed_in"], 0)

    def test_busy_since_and_last_cell_and_error(self):
        """Busy since the state changed; a new cell clears the last error; a stopped kernel goes."""
        self.roster.kernel_event("ready", model(), 10)
        self.roster.kernel_event("state", model(state="busy"), 12)
        self.roster.kernel_event("state", model(state="busy"), 13)
        self.roster.execute_input(A, "1/0", 12)
        self.roster.error(A, {"ename": "ZeroDivisionError", "evalue": "division by zero"})
        kernel, = self.roster.tile("alice")["kernels"]
        self.assertEqual((kernel["state"], kernel["busy_since"], kernel["last_cell"]),
                         ("busy", 12, "1/0"))
        self.assertEqual(kernel["last_error"]["ename"], "ZeroDivisionError")
        self.roster.execute_input(A, "1", 14)
        self.roster.kernel_event("state", model(), 15)
        kernel, = self.roster.tile("alice")["kernels"]
        self.assertEqual((kernel["last_error"], kernel["busy_since"]), (None, None))
        self.assertEqual(self.roster.kernel_event("stopped", model(), 16), ["alice"])
        self.assertEqual(self.roster.tile("alice")["kernels"], [])

    def test_dead_kernels_stay_dead_and_bounded(self):
        """A dead kernel is shown dead with its reason until stopped; at most two dead ones per user; never culled."""
        for n, kernel_id in enumerate("xyz"):
            self.roster.kernel_event("ready", model(kernel_id * 32), n)
            self.roster.kernel_event("dead", dict(model(kernel_id * 32), reason="out of memory"), n)
        kernels = self.roster.tile("alice")["kernels"]
        self.assertEqual([(k["id"][0], k["state"], k["reason"]) for k in kernels],
                         [("y", "dead", "out of memory"), ("z", "dead", "out of memory")])
        self.assertEqual(self.roster.idle_since(1000, 60), [])
        self.roster.kernel_event("stopped", model("y" * 32), 5)
        self.assertEqual([k["id"][0] for k in self.roster.tile("alice")["kernels"]], ["z"])

    def test_texts_are_cut(self):
        """A huge cell, error or help message is kept at MAX_TEXT characters."""
        self.roster.kernel_event("ready", model(), 0)
        self.roster.execute_input(A, "x" * 10 * MAX_TEXT, 1)
        self.roster.ask_help("alice", "y" * 10 * MAX_TEXT, 1)
        tile = self.roster.tile("alice")
        self.assertEqual(len(tile["kernels"][0]["last_cell"]), MAX_TEXT)
        self.assertEqual(len(tile["help"]["message"]), MAX_TEXT)

    def test_help_and_clear(self):
        """A help request stays until cleared; clearing nothing changes nothing."""
        self.roster.ask_help("alice", "stuck", 5)
        self.assertEqual(self.roster.tile("alice")["help"], {"message": "stuck", "at": 5})
        self.assertEqual(self.roster.clear_help("alice"), ["alice"])
        self.assertEqual(self.roster.clear_help("alice"), [])

    def test_everyone_and_students(self):
        """The roster lists the users file's users, signed in or not; students are those of role student."""
        self.assertEqual([t["user"] for t in self.roster.snapshot()], ["alice", "tess"])
        self.assertEqual(self.roster.students(), ["alice"])


class FakeSession:
    """What the culler uses of ClassSession: the roster, call, publish."""

    def __init__(self, watchers=0, watched_by=f"webkernel.kernel.{A}.iopub", match="prefix"):
        self.roster = ClassRoster(lambda: {"alice": "student"})
        self.own_subscriptions = {1}
        self.calls, self.published, self.watchers = [], [], watchers
        self.subscription = {"id": 2, "uri": watched_by, "match": match}

    def is_attached(self):
        return True

    def call(self, uri, *args):
        self.calls.append(uri)
        if uri == uris.SUBSCRIPTION_MATCH:
            return defer.succeed([1, 2])
        if uri == uris.SUBSCRIPTION_GET:
            return defer.succeed(self.subscription)
        if uri == uris.COUNT_SUBSCRIBERS:
            return defer.succeed(self.watchers)
        return defer.succeed(None)

    def publish(self, topic, options=None, **event):
        self.published.append((event, options))


class CullerTests(SynchronousTestCase):
    """IdleCuller on a fake clock."""

    def culler(self, watchers=0, **subscription):
        clock, session = Clock(), FakeSession(watchers, **subscription)
        session.roster.kernel_event("ready", model(), 0)
        culler = IdleCuller(session, clock, 60)
        culler.start()
        return clock, session, culler

    def test_idle_unwatched_kernel_is_culled(self):
        """After 60 s with no cell and no watcher the kernel is shut down and its owner told why."""
        clock, session, culler = self.culler()
        clock.advance(30)
        self.assertNotIn(f"webkernel.kernel.{A}.shutdown", session.calls)
        clock.advance(30)
        self.assertIn(f"webkernel.kernel.{A}.shutdown", session.calls)
        (event, options), _ = session.published
        self.assertEqual((event["event"], event["owner"]), ("culled", "alice"))
        self.assertEqual(options.eligible_authid, ["alice"])

    def test_a_cell_restarts_the_count(self):
        """A cell begun at 50 s keeps the kernel until 110 s."""
        clock, session, culler = self.culler()
        clock.advance(50)
        session.roster.execute_input(A, "1", 50)
        clock.advance(40)
        self.assertEqual(session.calls, [])
        clock.advance(30)
        self.assertIn(f"webkernel.kernel.{A}.shutdown", session.calls)

    def test_watched_kernel_is_kept(self):
        """A kernel someone other than the classroom session watches is not culled; only the other subscription is counted."""
        clock, session, culler = self.culler(watchers=1)
        clock.advance(60)
        clock.advance(60)
        self.assertNotIn(f"webkernel.kernel.{A}.shutdown", session.calls)
        self.assertEqual(session.calls.count(uris.COUNT_SUBSCRIBERS), 2)  # subscription 2, twice

    def test_a_subscription_to_every_kernel_watches_none(self):
        """A prefix or wildcard subscription over every kernel (a monitoring client) keeps no kernel; one naming it does."""
        for uri, match in (("webkernel.kernel.", "prefix"), ("webkernel.", "prefix"),
                           ("webkernel.kernel..iopub.status", "wildcard"),
                           (f"webkernel.kernel.{A[:8]}", "prefix")):
            clock, session, culler = self.culler(watchers=1, watched_by=uri, match=match)
            clock.advance(60)
            self.assertIn(f"webkernel.kernel.{A}.shutdown", session.calls, uri)
        for uri, match in ((f"webkernel.kernel.{A}.iopub.status", "exact"),
                           (f"webkernel.kernel.{A}", "prefix"),
                           (f"webkernel.kernel.{A}..status", "wildcard")):
            clock, session, culler = self.culler(watchers=1, watched_by=uri, match=match)
            clock.advance(60)
            self.assertNotIn(f"webkernel.kernel.{A}.shutdown", session.calls, uri)

    def test_busy_kernel_is_kept(self):
        """A kernel running a long cell is never culled."""
        clock, session, culler = self.culler()
        session.roster.kernel_event("state", model(state="busy"), 1)
        clock.advance(600)
        self.assertEqual(session.calls, [])


class AuthorizerTests(SynchronousTestCase):
    """The classroom authorizer's rules for webkernel.class.* and the classroom session."""

    def setUp(self):
        owners = KernelOwners()
        owners.event("started", {"id": A, "owner": "alice"})
        self.authorizer = ClassroomAuthorizer(owners)

    def allowed(self, session, uri, action="call", match="exact"):
        return self.authorizer.authorize(session, uri, action, {"match": match})["allow"]

    def test_who_calls_what(self):
        """Students only ask for help; observers only read the roster; teachers all but help."""
        table = {uris.HELP: (True, False, False), uris.ROSTER: (False, True, True),
                 uris.HELP_CLEAR: (False, False, True), uris.BROADCAST: (False, False, True),
                 uris.HAND_OUT: (False, False, True), uris.COLLECT: (False, False, True)}
        for uri, expected in table.items():
            self.assertEqual(tuple(self.allowed(s, uri) for s in (ALICE, OLGA, TESS)), expected, uri)

    def test_students_hear_only_the_exact_topic(self):
        """A student subscribes to webkernel.class.events exactly (eligibility filters it), never by pattern."""
        self.assertTrue(self.allowed(ALICE, uris.EVENTS, "subscribe"))
        self.assertFalse(self.allowed(ALICE, "webkernel.class", "subscribe", "prefix"))
        self.assertFalse(self.allowed(ALICE, uris.EVENTS, "publish"))

    def test_the_classroom_session(self):
        """It registers its procedures, publishes its topic, hears what it needs, calls execute and shutdown only."""
        self.assertTrue(self.allowed(SERVICE, uris.BROADCAST, "register"))
        self.assertFalse(self.allowed(SERVICE, "webkernel.kernels.start", "register"))
        self.assertTrue(self.allowed(SERVICE, uris.EVENTS, "publish"))
        self.assertFalse(self.allowed(SERVICE, f"webkernel.kernel.{A}.iopub.stream", "publish"))
        self.assertTrue(self.allowed(SERVICE, uris.ERRORS, "subscribe", "wildcard"))
        self.assertFalse(self.allowed(SERVICE, "webkernel", "subscribe", "prefix"))
        self.assertTrue(self.allowed(SERVICE, f"webkernel.kernel.{A}.execute"))
        self.assertTrue(self.allowed(SERVICE, uris.COUNT_SUBSCRIBERS))
        self.assertTrue(self.allowed(SERVICE, uris.SUBSCRIPTION_GET))
        self.assertFalse(self.allowed(SERVICE, "wamp.subscription.list"))
        self.assertFalse(self.allowed(SERVICE, f"webkernel.kernel.{A}.input"))
        self.assertFalse(self.allowed(SERVICE, "wamp.session.kill"))


class OnBehalfOfTests(SynchronousTestCase):
    """execute's on_behalf_of is the classroom session's only."""

    def details(self, authid, authrole):
        return SimpleNamespace(caller=7, caller_authid=authid, caller_authrole=authrole)

    def test_classroom_session_names_the_teacher(self):
        """From the classroom session, the output is attributed to the teacher, via the service."""
        caller = delegated_caller(self.details("webkernel_teaching", TEACHING_ROLE),
                                  {"authid": "tess", "authrole": "teacher"})
        self.assertEqual(caller, {"session": 7, "authid": "tess", "authrole": "teacher",
                                  "via": TEACHING_ROLE})

    def test_anyone_else_is_refused(self):
        """A student (or teacher) naming someone else is refused with invalid_argument."""
        for role in ("student", "teacher"):
            with self.assertRaises(errors.InvalidArgument):
                delegated_caller(self.details("alice", role), {"authid": "tess"})


class TemporaryFolders:
    """A temporary directory per test, removed afterwards (not under the working directory)."""

    def temporary(self):
        path = tempfile.mkdtemp(prefix="webkernel-class-")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path


class ClassPageTests(TemporaryFolders, SynchronousTestCase):
    """/class: the shell of the class bundle, under the notebook page's Content-Security-Policy."""

    def render(self, static_dir):
        from twisted.web.test.requesthelper import DummyRequest

        from broker.teaching.page import ClassPage
        request = DummyRequest([b""])
        body = ClassPage("webkernel", static_dir=static_dir).render_GET(request)
        return request, body

    def test_page_loads_the_class_bundle(self):
        """The page names class.js and class.css, says it signs in by WAMP-CRA, and forbids inline script."""
        import os
        static = self.temporary()
        open(os.path.join(static, "class.js"), "w").close()
        request, body = self.render(static)
        self.assertIn(b'src="static/class.js?v=', body)
        self.assertIn(b'content="wampcra"', body)
        csp = request.responseHeaders.getRawHeaders(b"content-security-policy")[0]
        self.assertIn(b"script-src 'self'", csp)

    def test_page_headers_are_the_notebook_pages(self):
        """The class page is never cached, framed, sniffed or sent with a referrer, like the notebook page."""
        request, _ = self.render(self.temporary())
        headers = {name: request.responseHeaders.getRawHeaders(name)[0] for name in (
            b"cache-control", b"x-frame-options", b"x-content-type-options", b"referrer-policy")}
        self.assertEqual(headers, {b"cache-control": b"no-store", b"x-frame-options": b"DENY",
                                   b"x-content-type-options": b"nosniff",
                                   b"referrer-policy": b"no-referrer"})

    def test_not_built(self):
        """Without the bundle the page says how to build it (503)."""
        request, body = self.render(self.temporary() + "/none")
        self.assertEqual(request.responseCode, 503)
        self.assertIn(b"npm run build", body)


class Folder:
    """A NotebookDirectory with its root, as the hand-out functions need."""

    def __init__(self, root):
        import os

        from broker.notebook.store import NotebookDirectory
        os.makedirs(root, exist_ok=True)
        self.root, self.store = root, NotebookDirectory(root)
        self.get, self.save = self.store.get, self.store.save


def notebook(source):
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "code", "id": "c1", "source": source, "metadata": {},
                       "outputs": [], "execution_count": None}]}


class HandOutTests(TemporaryFolders, SynchronousTestCase):
    """Hand-out never overwrites a student's changed copy; collect gathers and names who has none."""

    def setUp(self):
        base = self.temporary()
        self.folders = {}

        def folder_of(user):
            if user not in self.folders:
                self.folders[user] = Folder(f"{base}/{user}")
            return self.folders[user]
        self.folder_of = folder_of
        folder_of("tess").save("lesson.ipynb", notebook("x = 1"))

    def test_hand_out_then_again(self):
        """First a copy; the same again changes nothing; a student's changed copy stays, the new one gets a new name."""
        from broker.teaching.handout import hand_out
        first = hand_out(self.folder_of, "tess", "lesson.ipynb", ["alice", "bob"])
        self.assertEqual(first["alice"], {"status": "handed_out", "path": "lesson.ipynb"})
        self.folder_of("bob").save("lesson.ipynb", notebook("x = 'bob was here'"))
        again = hand_out(self.folder_of, "tess", "lesson.ipynb", ["alice", "bob"])
        self.assertEqual(again["alice"]["status"], "unchanged")
        self.assertEqual(again["bob"], {"status": "renamed", "path": "lesson-2.ipynb"})
        self.assertEqual(self.folder_of("bob").get("lesson.ipynb")["content"]["cells"][0]["source"],
                         "x = 'bob was here'")

    def test_collect(self):
        """Each student's copy lands in collected/<stem>/<student>.ipynb; those without one are listed."""
        from broker.teaching.handout import collect
        self.folder_of("alice").save("lesson.ipynb", notebook("alice's answer"))
        answer = collect(self.folder_of, "tess", "lesson.ipynb", ["alice", "bob"])
        self.assertEqual(answer, {"path": "collected/lesson", "collected": ["alice"],
                                  "missing": ["bob"]})
        got = self.folder_of("tess").get("collected/lesson/alice.ipynb")["content"]
        self.assertEqual(got["cells"][0]["source"], "alice's answer")

    def test_collect_follows_no_symlink(self):
        """A symlink planted as collected/ in the teacher's folder is refused, not followed."""
        import os

        from broker.teaching.handout import collect
        elsewhere = self.temporary()
        os.symlink(elsewhere, os.path.join(self.folder_of("tess").root, "collected"))
        from broker.notebook.store import PathOutsideNotebookDir
        with self.assertRaises(PathOutsideNotebookDir):
            collect(self.folder_of, "tess", "lesson.ipynb", ["alice"])
        self.assertEqual(os.listdir(elsewhere), [])

    def test_not_a_notebook(self):
        """A path that names no notebook, or a hidden one (so collected/<stem> is never . or ..), is invalid_argument."""
        from broker.teaching.handout import hand_out
        for path in ("notes.txt", ".ipynb", "...ipynb", "dir/.hidden.ipynb"):
            with self.assertRaises(errors.InvalidArgument):
                hand_out(self.folder_of, "tess", path, ["alice"])


class DownloadTicketTests(SynchronousTestCase):
    """Zip download tickets work once, for their lifetime, and are bounded in number."""

    def test_once_and_expiry_and_limit(self):
        """A ticket is taken once; an expired one is nothing; past the limit the oldest goes."""
        from broker.teaching.download import DownloadTickets
        clock = Clock()
        tickets = DownloadTickets(clock, lifetime=10, limit=2)
        first = tickets.issue("a")
        self.assertEqual(tickets.take(first), "a")
        self.assertIsNone(tickets.take(first))
        late = tickets.issue("b")
        clock.advance(10)
        self.assertIsNone(tickets.take(late))
        oldest, _, _ = tickets.issue("c"), tickets.issue("d"), tickets.issue("e")
        self.assertIsNone(tickets.take(oldest))


class OptionTests(SynchronousTestCase):
    """--cull-idle is multi-user mode's."""

    def test_cull_idle_needs_users(self):
        """Without --users, --cull-idle is refused at the command line."""
        from twisted.python import usage

        from broker.tap import Options
        with self.assertRaises(usage.UsageError):
            Options().parseOptions(["--cull-idle", "60"])


class BroadcastAnswerTests(SynchronousTestCase):
    """A broadcast answers in bounded time and sums each student's kernels up."""

    def test_a_kernel_still_running_is_reported_not_waited_for(self):
        """After BROADCAST_WAIT a kernel still running is "running"; its call is not cancelled."""
        from broker.teaching.session import within
        clock, slow = Clock(), defer.Deferred(lambda d: self.fail("cancelled"))
        answer = within(slow, clock, 60, {"status": "running"})
        self.assertNoResult(answer)
        clock.advance(60)
        self.assertEqual(self.successResultOf(answer), {"status": "running"})
        slow.callback({"status": "ok"})  # later: nothing more happens

    def test_a_quick_kernel_answers_at_once(self):
        """A kernel that finishes first answers with its result, and the timer is gone."""
        from broker.teaching.session import within
        clock = Clock()
        answer = within(defer.succeed({"status": "ok"}), clock, 60, None)
        self.assertEqual(self.successResultOf(answer), {"status": "ok"})
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_per_student(self):
        """ok only if every kernel is ok; an error wins over running; no kernel is no_kernel."""
        from broker.teaching.session import _per_student
        answer = _per_student(["a", "b", "c", "d"], [("a", 1), ("b", 2), ("b", 3), ("c", 4)],
                              [{"status": "ok"}, {"status": "running"}, {"status": "error"},
                               {"status": "running"}])
        self.assertEqual({u: e["status"] for u, e in answer.items()},
                         {"a": "ok", "b": "error", "c": "running", "d": "no_kernel"})


class TileThrottleTests(SynchronousTestCase):
    """A user's tile goes to the teachers at most once per TILE_INTERVAL, the newest never lost."""

    def test_throttle(self):
        """The first change is sent at once; a burst after it is one send when the interval ends; keys are apart."""
        from broker.teaching.session import Throttle
        clock, sent = Clock(), []
        throttle = Throttle(clock, 1.0, sent.append)
        throttle("alice")
        self.assertEqual(sent, ["alice"])
        for _ in range(100):
            throttle("alice")
        throttle("bob")
        self.assertEqual(sent, ["alice", "bob"])
        clock.advance(0.5)
        throttle("alice")
        self.assertEqual(sent, ["alice", "bob"])
        clock.advance(0.5)
        self.assertEqual(sent, ["alice", "bob", "alice"])
        clock.advance(5)
        throttle("alice")
        self.assertEqual(sent, ["alice", "bob", "alice", "alice"], "after a quiet interval: at once")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_help_in_a_loop_is_two_tiles_with_the_last_message(self):
        """A student asking for help 1,000 times at once costs the teachers two events, the second with the last message."""
        from autobahn.wamp import types

        from broker.teaching.session import TILE_INTERVAL, ClassSession
        clock, published = Clock(), []
        session = ClassSession(types.ComponentConfig(realm="webkernel"), clock,
                               users=lambda: {"alice": "student"})
        session.is_attached = lambda: True
        session.publish = lambda topic, options=None, **event: published.append(event)
        details = SimpleNamespace(caller_authid="alice")
        for n in range(1000):
            session.help(f"help {n}", details=details)
        self.assertEqual([e["user"]["help"]["message"] for e in published], ["help 0"])
        clock.advance(TILE_INTERVAL)
        self.assertEqual([e["user"]["help"]["message"] for e in published], ["help 0", "help 999"])
