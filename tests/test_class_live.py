"""The live classroom (``webkernel.class.*``) on a real ``twistd webkernel --users --cull-idle``.

Raw Autobahn clients sign in as students alice and bob, teacher tess and
observer olga over real WebSockets, with real kernels: help appears and
clears on the teachers' topic, the roster follows sign-ins, cells and
errors, a broadcast runs in every student's kernel attributed to the
teacher, an unwatched idle kernel is culled with an event saying why, and
every refusal of the classroom authorizer holds. Waits are bounded.
"""

import io
import os
import zipfile

import pytest
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer, reactor

from tests.test_classroom_service import TIMEOUT, ServiceTestCase

#: seconds after which an unwatched kernel is culled in this service
CULL_IDLE = 3


class Events:
    """A subscriber's events on webkernel.class.events; waits for one matching a test."""

    def __init__(self):
        self.seen, self.waiting = [], []

    def __call__(self, **event):
        self.seen.append(event)
        for wanted, d in list(self.waiting):
            if wanted(event):
                self.waiting.remove((wanted, d))
                d.callback(event)

    def first(self, wanted):
        for event in self.seen:
            if wanted(event):
                return defer.succeed(event)
        d = defer.Deferred()
        self.waiting.append((wanted, d))
        return d.addTimeout(TIMEOUT, reactor)


def tile_of(user, test=lambda tile: True):
    return lambda e: e.get("event") == "user" and e["user"]["user"] == user and test(e["user"])


@pytest.mark.integration
class ClassLiveTests(ServiceTestCase):
    """Teacher, observer and students using the live classroom API."""

    service_options = ("--cull-idle", str(CULL_IDLE))

    @defer.inlineCallbacks
    def listen(self, session):
        events = Events()
        yield session.subscribe(events, "webkernel.class.events")
        return events

    def download(self, path):
        """GET a path of the service's site (its body; fails unless 200)."""
        from twisted.web.client import Agent, readBody
        url = f"http://127.0.0.1:{self.service.port}/{path}".encode()
        d = Agent(reactor).request(b"GET", url)

        def body(response):
            if response.code != 200:
                raise ValueError(f"HTTP {response.code}")
            return readBody(response)
        return d.addCallback(body).addTimeout(TIMEOUT, reactor)

    @defer.inlineCallbacks
    def watched_kernel(self, session):
        """A kernel of *session*'s, watched by it (so it is never culled here)."""
        model = yield self.start(session)
        yield session.subscribe(lambda *a, **k: None, f"webkernel.kernel.{model['id']}.iopub",
                                options=SubscribeOptions(match="prefix"))
        return model["id"]

    @defer.inlineCallbacks
    def test_help_appears_and_clears(self):
        """A student's help request reaches teacher and observer at once; the teacher clears it."""
        tess_events = yield self.listen(self.teacher)
        olga = yield self.sign_in("olga")
        olga_events = yield self.listen(olga)
        alice = yield self.sign_in("alice")
        yield alice.call("webkernel.class.help", "my loop never ends")
        asked = tile_of("alice", lambda t: (t["help"] or {}).get("message") == "my loop never ends")
        yield tess_events.first(asked)
        yield olga_events.first(asked)
        cleared = yield self.teacher.call("webkernel.class.help_clear", "alice")
        self.assertTrue(cleared)
        yield tess_events.first(tile_of("alice", lambda t: t["help"] is None))
        roster = yield self.teacher.call("webkernel.class.roster")
        self.assertIsNone({t["user"]: t for t in roster["users"]}["alice"]["help"])

    @defer.inlineCallbacks
    def test_students_hear_no_one_elses_tiles(self):
        """A student subscribed to webkernel.class.events gets what is published to them, not another student's help request."""
        tess_events = yield self.listen(self.teacher)
        bob = yield self.sign_in("bob")
        bob_events = yield self.listen(bob)
        alice = yield self.sign_in("alice")
        yield alice.call("webkernel.class.help", "private trouble")
        # tiles are throttled: wait until alice's is out, as the teacher sees it
        yield tess_events.first(tile_of("alice", lambda t: (t["help"] or {}).get("message") == "private trouble"))
        os.makedirs(os.path.join(self.directory, "homes", "tess"), exist_ok=True)
        yield self.teacher.call("webkernel.notebooks.save", "tess/probe.ipynb", {
            "nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})
        yield self.teacher.call("webkernel.class.hand_out", "probe.ipynb", group=["bob"])
        # published after alice's tile by the same session, so delivered after it, had bob been eligible
        yield bob_events.first(lambda e: e.get("event") == "handed_out")
        self.assertEqual([e for e in bob_events.seen if e.get("event") == "user"], [])
        yield self.teacher.call("webkernel.class.help_clear", "alice")

    @defer.inlineCallbacks
    def test_roster_follows_sign_in_cells_and_errors(self):
        """The roster has every user signed in or not; a student's cell and its error reach the teacher's tile."""
        events = yield self.listen(self.teacher)
        alice = yield self.sign_in("alice")
        yield events.first(tile_of("alice", lambda t: t["signed_in"] >= 1))
        kernel = yield self.watched_kernel(alice)
        result = yield alice.call(f"webkernel.kernel.{kernel}.execute", "1/0")
        self.assertEqual(result.kwresults["status"], "error")
        tile = yield events.first(tile_of("alice", lambda t: any(
            (k["last_error"] or {}).get("ename") == "ZeroDivisionError" for k in t["kernels"])))
        self.assertEqual([k["last_cell"] for k in tile["user"]["kernels"] if k["id"] == kernel],
                         ["1/0"])
        roster = yield self.teacher.call("webkernel.class.roster")
        users = {t["user"]: t for t in roster["users"]}
        self.assertEqual((users["jill"]["role"], users["jill"]["signed_in"]), ("student", 0))
        self.assertGreaterEqual(users["alice"]["signed_in"], 1)
        self.assertIn(kernel, [k["id"] for k in users["alice"]["kernels"]])

    @defer.inlineCallbacks
    def test_broadcast_runs_in_every_students_kernel(self):
        """A broadcast runs in each student's kernel, answers per student, and is attributed to the teacher."""
        alice = yield self.sign_in("alice")
        bob = yield self.sign_in("bob")
        alice_kernel = yield self.watched_kernel(alice)
        bob_kernel = yield self.watched_kernel(bob)
        inputs = Events()
        yield alice.subscribe(inputs, f"webkernel.kernel.{alice_kernel}.iopub.execute_input")
        answer = yield self.teacher.call("webkernel.class.broadcast", "setup = 40 + 2",
                                         group=["alice", "bob"])
        self.assertEqual({u: a["status"] for u, a in answer.items()}, {"alice": "ok", "bob": "ok"})
        self.assertEqual(list(answer["bob"]["kernels"]), [bob_kernel])
        seen = yield inputs.first(lambda e: e["content"]["code"] == "setup = 40 + 2")
        self.assertEqual((seen["caller"]["authid"], seen["caller"]["via"]),
                         ("tess", "webkernel_teaching"))
        value = yield bob.call(f"webkernel.kernel.{bob_kernel}.eval_cell", "setup")
        self.assertEqual(value, "42")
        failed = yield self.teacher.call("webkernel.class.broadcast", "1/0", group=["alice"])
        self.assertEqual(failed["alice"]["status"], "error", failed)
        self.assertEqual(failed["alice"]["kernels"][alice_kernel]["ename"], "ZeroDivisionError")

    @defer.inlineCallbacks
    def test_idle_unwatched_kernel_is_culled_with_a_reason(self):
        """A kernel no one runs or watches for --cull-idle seconds is shut down; its owner hears why."""
        gus = yield self.sign_in("gus")
        events = yield self.listen(gus)
        model = yield self.start(gus)
        culled = yield events.first(lambda e: e.get("event") == "culled"
                                    and e["kernel_id"] == model["id"])
        self.assertEqual(culled["owner"], "gus")
        self.assertIn("--cull-idle", culled["reason"])
        kernels = yield gus.call("webkernel.kernels.list")
        self.assertNotIn(model["id"], [k["id"] for k in kernels])

    @defer.inlineCallbacks
    def test_refusals(self):
        """Students call only help; observers only the roster; teachers not help; no one forges on_behalf_of."""
        alice = yield self.sign_in("alice")
        olga = yield self.sign_in("olga")
        for procedure, args in (("roster", ()), ("help_clear", ("bob",)),
                                ("broadcast", ("print(1)",))):
            yield self.refused(lambda: alice.call(f"webkernel.class.{procedure}", *args))
        for procedure, args in (("help", ()), ("help_clear", ("bob",)),
                                ("broadcast", ("print(1)",))):
            yield self.refused(lambda: olga.call(f"webkernel.class.{procedure}", *args))
        yield self.refused(lambda: self.teacher.call("webkernel.class.help"))
        yield self.refused(lambda: alice.subscribe(lambda **k: None, "webkernel.class",
                                                   options=SubscribeOptions(match="prefix")))
        yield self.refused(lambda: alice.register(lambda: None, "webkernel.class.help"))
        yield self.refused(lambda: self.teacher.register(lambda: None, "webkernel.class.help"))
        kernel = yield self.watched_kernel(alice)
        try:
            yield alice.call(f"webkernel.kernel.{kernel}.execute", "1",
                             on_behalf_of={"authid": "tess", "authrole": "teacher"})
        except Exception as e:
            self.assertEqual(e.error, "wamp.error.invalid_argument")
        else:
            self.fail("on_behalf_of taken from a student")

    @defer.inlineCallbacks
    def test_hand_out_and_collect(self):
        """A teacher's notebook reaches each student's folder (a changed copy kept, a new name instead); collect gathers it and names who has none."""
        nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
              "cells": [{"cell_type": "code", "id": "c1", "source": "x = 1", "metadata": {},
                         "outputs": [], "execution_count": None}]}
        alice = yield self.sign_in("alice")
        bob = yield self.sign_in("bob")
        os.makedirs(os.path.join(self.directory, "homes", "tess"), exist_ok=True)  # a teacher's home
        yield self.teacher.call("webkernel.notebooks.save", "tess/week1.ipynb", nb)
        events = yield self.listen(alice)
        given = yield self.teacher.call("webkernel.class.hand_out", "week1.ipynb",
                                        group=["alice", "bob"])
        self.assertEqual(given["alice"]["status"], "handed_out")
        yield events.first(lambda e: e.get("event") == "handed_out" and e["path"] == "week1.ipynb")
        mine = yield alice.call("webkernel.notebooks.get", "week1.ipynb")
        self.assertEqual(mine["content"]["cells"][0]["source"], "x = 1")
        changed = dict(nb, cells=[dict(nb["cells"][0], source="x = 'alice'")])
        yield alice.call("webkernel.notebooks.save", "week1.ipynb", changed)
        again = yield self.teacher.call("webkernel.class.hand_out", "week1.ipynb",
                                        group=["alice", "bob"])
        self.assertEqual(again["alice"], {"status": "renamed", "path": "week1-2.ipynb"})
        self.assertEqual(again["bob"]["status"], "unchanged")
        kept = yield alice.call("webkernel.notebooks.get", "week1.ipynb")
        self.assertEqual(kept["content"]["cells"][0]["source"], "x = 'alice'")
        yield bob.call("webkernel.notebooks.save", "week1.ipynb", dict(nb, cells=[]))
        got = yield self.teacher.call("webkernel.class.collect", "week1.ipynb",
                                      group=["alice", "bob", "carl"])
        self.assertEqual((got["collected"], got["missing"]), (["alice", "bob"], ["carl"]))
        alices = yield self.teacher.call("webkernel.notebooks.get",
                                         "tess/collected/week1/alice.ipynb")
        self.assertEqual(alices["content"]["cells"][0]["source"], "x = 'alice'")
        zipped = yield self.download(got["download"])
        self.assertEqual(sorted(zipfile.ZipFile(io.BytesIO(zipped)).namelist()),
                         ["alice.ipynb", "bob.ipynb"])
        with self.assertRaises(Exception):  # a download link works once
            yield self.download(got["download"])
        yield self.refused(lambda: alice.call("webkernel.class.collect", "week1.ipynb"))
        yield self.refused(lambda: alice.call("webkernel.class.hand_out", "week1.ipynb"))
