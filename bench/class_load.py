"""Load for the class bench: 100 simulated students running code, as the service sees it.

Run by ``bench/class_bench.py``, in a process of its own (Twisted). It joins
the service as a kernel host (``--host-token``) that owns one simulated
kernel per student, and signs every student in (WAMP-CRA). Each student
"runs a cell" every *period* seconds (start times spread evenly): the host
publishes what a real kernel's run publishes and what the live classroom
listens to: a ``state`` busy event, ``execute_input``, a ``stream`` line,
every tenth cell an ``error``, then ``state`` idle. No kernel processes: the
bench measures the router, the classroom session and the teacher's page, not
ipykernel.

    python bench/class_load.py WS_URL HOST_TOKEN PASSWORD_FILE SECONDS [PERIOD]

Prints one JSON line: cells run, publications, seconds.
"""

import json
import sys
import uuid

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.component import Component
from autobahn.wamp.auth import compute_wcs, derive_key
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer, reactor, task

NO_ACK = PublishOptions(acknowledge=False)
EVENTS_TO = PublishOptions(acknowledge=False, eligible_authrole=[
    "teacher", "observer", "webkernel_classroom", "webkernel_teaching"])


class Student(ApplicationSession):
    """A student signed in by WAMP-CRA, doing nothing else (the host 'runs' their cells)."""

    def onConnect(self):
        self.join(self.config.realm, authmethods=["wampcra"], authid=self.config.extra["user"])

    def onChallenge(self, challenge):
        extra = challenge.extra
        key = derive_key(self.config.extra["password"], extra["salt"], extra["iterations"],
                         extra["keylen"])
        return compute_wcs(key, extra["challenge"]).decode("ascii")

    def onJoin(self, details):
        self.config.extra["joined"].callback(None)


def model(kernel_id, owner, state):
    return {"id": kernel_id, "name": "python3", "owner": owner, "execution_state": state,
            "last_activity": None, "created": None, "reason": None, "shared": {}}


class Host:
    """Publishes the simulated kernels' events and outputs."""

    def __init__(self, session, students):
        self.session = session
        self.kernels = {user: uuid.uuid4().hex for user in students}
        self.seq = dict.fromkeys(self.kernels.values(), 0)
        self.cells = self.publications = 0

    def event(self, event, user, state):
        self.session.publish("webkernel.kernels.events", options=EVENTS_TO, event=event,
                             kernel=model(self.kernels[user], user, state))
        self.publications += 1

    def output(self, user, msg_type, content):
        kernel_id = self.kernels[user]
        self.seq[kernel_id] += 1
        self.session.publish(f"webkernel.kernel.{kernel_id}.iopub.{msg_type}", options=NO_ACK,
                             seq=self.seq[kernel_id], msg_type=msg_type, content=content,
                             metadata={}, parent_msg_id=None,
                             caller={"session": 0, "authid": user, "authrole": "student"})
        self.publications += 1

    def run_cell(self, user):
        self.cells += 1
        n = self.cells
        self.event("state", user, "busy")
        self.output(user, "execute_input", {"code": f"x = {n}\nprint(x)", "execution_count": n})
        self.output(user, "stream", {"name": "stdout", "text": f"{n}\n"})
        if n % 10 == 0:
            self.output(user, "error", {"ename": "ValueError", "evalue": f"cell {n}",
                                        "traceback": []})
        reactor.callLater(0.2, self.event, "state", user, "idle")


@defer.inlineCallbacks
def main(url, host_token, password_file, seconds, period):
    passwords = json.load(open(password_file))
    students = sorted(u for u in passwords if u.startswith("s"))
    joined = []
    for user in students:
        d = defer.Deferred()
        joined.append(d)
        Component(transports=url, realm="webkernel", session_factory=Student,
                  extra={"user": user, "password": passwords[user], "joined": d}).start(reactor)
    yield defer.gatherResults(joined)
    host_joined = defer.Deferred()
    host_component = Component(transports=url, realm="webkernel", authentication={
        "ticket": {"authid": "webkernel_host", "ticket": host_token}})
    host_component.on("join", lambda session, details: host_joined.callback(session))
    host_component.start(reactor)
    session = yield host_joined
    host = Host(session, students)
    for user in students:
        host.event("ready", user, "idle")
    print(json.dumps({"ready": len(students)}), flush=True)
    loops = []
    for i, user in enumerate(students):
        loop = task.LoopingCall(host.run_cell, user)
        loops.append(loop)
        reactor.callLater(period * i / len(students), loop.start, period, now=True)
    yield task.deferLater(reactor, seconds, lambda: None)
    for loop in loops:
        if loop.running:
            loop.stop()
    print(json.dumps({"cells": host.cells, "publications": host.publications,
                      "seconds": seconds}), flush=True)
    reactor.stop()


if __name__ == "__main__":
    url, token, password_file, seconds = sys.argv[1:5]
    period = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
    reactor.callWhenRunning(lambda: main(url, token, password_file, float(seconds), period)
                            .addErrback(lambda f: (print(f.getTraceback(), file=sys.stderr),
                                                   reactor.stop())))
    reactor.run()
