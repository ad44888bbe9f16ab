"""What the fuzz tests against the real service share: settings, a healthy session, checks.

The fuzz modules (``tests/test_fuzz_transports.py``, ``tests/test_fuzz_procedures.py``)
start one real ``twistd webkernel`` each and keep a :class:`HealthySession`
open on it the whole time. After every example :meth:`HealthySession.check`
proves that the bad input disturbed nothing: the service runs, the healthy
session's calls are answered promptly and correctly, nothing it did not ask
for reached it, every fuzz connection's session is gone again, and the
service logged no traceback.

Examples are derandomized (the same ones every run, so a failure reproduces);
``FUZZ_EXAMPLES=500 FUZZ_RANDOM=1`` makes a longer, random fuzz run, and
Hypothesis prints the ``@reproduce_failure`` blob of anything it finds. A
failing example is reported as found, not shrunk (each try against the real
service can take seconds); ``FUZZ_SHRINK=1`` shrinks it.
"""

import itertools
import os
import time

from hypothesis import HealthCheck, Phase, settings

from tests.wirepeer import ABORT, EVENT, GOODBYE, RESULT, SUBSCRIBED, WirePeer

#: a healthy call must be answered within this many seconds ("promptly")
PROMPTLY = 5
#: fuzz sessions must be gone (their connections closed) within this many seconds
SESSIONS_GONE_WITHIN = 5


def fuzz_settings(examples):
    """Hypothesis settings for *examples* examples (``FUZZ_EXAMPLES`` overrides the number)."""
    scale = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
    shrink = [Phase.shrink] if os.environ.get("FUZZ_SHRINK") else []
    return settings(
        max_examples=scale or examples, deadline=None, database=None, print_blob=True,
        derandomize=not os.environ.get("FUZZ_RANDOM"),
        phases=[Phase.explicit, Phase.generate, *shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
    )


class HealthySession:
    """A well-behaved client that stays joined while others misbehave.

    :meth:`check`, after each fuzz example, proves the service still serves it
    as before; events of its subscriptions are collected in ``events``, and
    anything else unasked for fails the test.
    """

    def __init__(self, service, transport, serializer):
        self.service = service
        self.peer = WirePeer(service.port, transport, serializer)
        self.peer.join()
        self.requests = itertools.count(1)
        self.subscriptions = set()
        self.events = []
        self.baseline = None
        self.log_mark = 0

    def call(self, procedure, args=None, kwargs=None, within=PROMPTLY):
        """CALL; return the RESULT's ``(args, kwargs)``; fail on anything but a prompt RESULT."""
        request = next(self.requests)
        started = time.monotonic()
        answer = self.peer.call(request, procedure, args, kwargs, timeout=within)
        took = time.monotonic() - started
        self._only_events(self.peer.passed)
        assert answer[0] == RESULT and answer[1] == request, (procedure, answer)
        assert took < within, f"{procedure} took {took:.1f} s"
        return (answer[3] if len(answer) > 3 else []), (answer[4] if len(answer) > 4 else {})

    def subscribe(self, topic, match="exact"):
        self.peer.send([32, next(self.requests), {"match": match}, topic])
        reply = self.peer.recv(PROMPTLY)
        assert reply[0] == SUBSCRIBED, reply
        self.subscriptions.add(reply[2])

    def _only_events(self, messages):
        """What arrived besides answers must be events of our subscriptions (no ABORT, GOODBYE, …)."""
        for msg in messages:
            assert msg[0] not in (ABORT, GOODBYE), f"the healthy session was closed: {msg}"
            assert msg[0] == EVENT and msg[1] in self.subscriptions, f"unexpected {msg}"
            self.events.append(msg)

    def sessions(self):
        return self.call("wamp.session.count")[0][0]

    def settle(self):
        """Record the number of sessions and the log position that later checks compare with."""
        self.baseline = self.sessions()
        self.log_mark = len(self.service.lines)

    def check(self):
        """The service is alive and serves the healthy session as before; nothing leaked."""
        assert self.service.alive(), "the service exited:\n" + self.service.log()[-5000:]
        deadline = time.monotonic() + SESSIONS_GONE_WITHIN
        while (count := self.sessions()) != self.baseline:
            assert time.monotonic() < deadline, f"{count} sessions, expected {self.baseline}"
            time.sleep(0.01)
        kernels, _ = self.call("webkernel.kernels.list")
        assert isinstance(kernels[0], list), kernels
        self.no_tracebacks()

    def no_tracebacks(self):
        """The service logged no traceback since the last check (an exception escaped somewhere)."""
        lines, self.log_mark = self.service.lines[self.log_mark:], len(self.service.lines)
        bad = [line for line in lines if "Traceback" in line or "Unhandled" in line]
        assert not bad, "the service logged an exception:\n" + "".join(lines)[-8000:]

    def close(self):
        self.peer.close()
