"""
A worker process of the soak benchmark (``soak_bench.py``): client sessions that come,
run cells and go, at random, for as long as the driver says.

``--concurrency`` client lives run at once, each followed by the next. One life:
join (JSON or MessagePack, at random), pick a kernel, perhaps subscribe to its
iopub (prefix), run one to four cells (``print`` of 1 to 300 numbered lines, with
progress), then end one of three ways:

* leave cleanly (most lives);
* drop the TCP connection abruptly in the middle of a running cell: a new session
  then finds that cell's outputs in the kernel's history
  (``outputs(since=…)``), every line and its ``idle``, exactly once;
* drop abruptly between cells.

Checked every time: each cell's final result is ``ok`` with every line exactly once;
a subscribed life received every seq of its kernel, in order, from its first event
to the last output of its own last cell.  Failures are counted with an example.

JSON lines with the driver: ``tally`` every ``--report`` seconds, ``done`` at the
end (after ``--minutes``); closing stdin also ends it.
"""

import argparse
import os
import random
import time
import traceback

import broker  # noqa: F401  (selects Twisted for txaio)
from autobahn.wamp.types import CallOptions, SubscribeOptions
from twisted.internet import defer, task

from worker_channel import emit
from kernel_cells import WEBKERNEL_REALM
from wamp_client import close_sessions, connect_session

HISTORY_WAIT = 60.0
CALL_TIMEOUT = 120_000   # ms: the WAMP CALL option (Autobahn passes it through as is)


def lines_cell(tag, lines):
    return f"# {tag}\nfor i in range({lines}): print('{tag}', i, flush=True)"


def lines_in(outputs, tag):
    """The numbers printed by the cell tagged ``tag``, in order, from its stream outputs."""
    text = "".join(o["content"].get("text", "") for o in outputs
                   if o["msg_type"] == "stream" and o["content"].get("name") == "stdout")
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith(tag + " ")]


class Tally:
    def __init__(self):
        self.counts = {"lives": 0, "executions": 0, "lines": 0, "dropped_mid_cell": 0,
                       "recovered_from_history": 0, "dropped_idle": 0, "left": 0,
                       "subscribed_lives": 0, "events": 0, "failures": 0}
        self.examples = []

    def add(self, name, n=1):
        self.counts[name] += n

    def fail(self, why):
        self.counts["failures"] += 1
        if len(self.examples) < 10:
            self.examples.append(why)


class Life:
    """One client session from join to leave or drop."""

    def __init__(self, reactor, options, tally, rng, number):
        self.reactor, self.options, self.tally, self.rng = reactor, options, tally, rng
        self.tag = f"w{options.worker}l{number}"
        self.seqs = []
        self.reached = None   # (seq, Deferred): fired once an event with that seq has come

    async def run(self):
        options, rng = self.options, self.rng
        kernel = rng.choice(options.kernels)
        serializer = rng.choice(["json", "msgpack"])
        session = await connect_session(self.reactor, options.url, WEBKERNEL_REALM, serializer,
                                        timeout=60.0)
        self.tally.add("lives")
        subscribed = rng.random() < 0.5
        if subscribed:
            self.tally.add("subscribed_lives")
            await session.subscribe(self._event, f"webkernel.kernel.{kernel}.iopub",
                                    options=SubscribeOptions(match="prefix"))
        fate = rng.choices(["leave", "drop_mid_cell", "drop_idle"], [0.7, 0.2, 0.1])[0]
        cells = rng.randint(1, 4)
        last_seq = None
        for index in range(cells):
            tag = f"{self.tag}c{index}"
            lines = rng.randint(1, 300)
            if fate == "drop_mid_cell" and index == cells - 1:
                await self._drop_mid_cell(session, kernel, tag, max(lines, 50))
                return
            last_seq = await self._execute(session, kernel, tag, lines)
        if subscribed and last_seq is not None:
            await self._check_subscription(last_seq)
        if fate == "drop_idle":
            self.tally.add("dropped_idle")
            session._transport.dropConnection(abort=True)
            await session.disconnected
        else:
            self.tally.add("left")
            await close_sessions(self.reactor, [session], timeout=30.0)

    def _event(self, *args, **output):
        self.tally.add("events")
        self.seqs.append(output["seq"])
        if self.reached is not None and output["seq"] >= self.reached[0]:
            self.reached[1].callback(None)
            self.reached = None
        if output.get("msg_type") == "gap":
            self.tally.fail(f"{self.tag}: gap marker {output} for a reading subscriber")

    async def _execute(self, session, kernel, tag, lines):
        result = (await session.call(f"webkernel.kernel.{kernel}.execute",
                                     code=lines_cell(tag, lines),
                                     options=CallOptions(timeout=CALL_TIMEOUT))).kwresults
        self.tally.add("executions")
        got = lines_in(result["outputs"], tag)
        if result["status"] != "ok" or got != list(range(lines)):
            self.tally.fail(f"{tag}: status {result['status']}, {len(got)} of {lines} lines"
                            f" (omitted {result.get('omitted')})")
        else:
            self.tally.add("lines", lines)
        return result["outputs"][-1]["seq"]

    async def _check_subscription(self, last_seq):
        if not self.seqs or self.seqs[-1] < last_seq:   # the events may still be on their way
            self.reached = (last_seq, defer.Deferred())
            await self.reached[1].addTimeout(30.0, self.reactor).addErrback(lambda _: None)
        seqs = self.seqs
        if not seqs:
            self.tally.fail(f"{self.tag}: subscribed, but no event came")
            return
        expected = list(range(seqs[0], last_seq + 1))
        if seqs[:len(expected)] != expected:
            missing = sorted(set(expected) - set(seqs))
            self.tally.fail(f"{self.tag}: subscriber saw {len(seqs)} events, missing {missing[:5]}"
                            f" ({len(missing)}), in order: {seqs == sorted(seqs)}")

    async def _drop_mid_cell(self, session, kernel, tag, lines):
        """Drop the connection once the cell has printed; find all of it in the history."""
        seen = []
        started = defer.Deferred()

        def progress(*args, **output):
            seen.append(output)
            if output["msg_type"] == "stream" and not started.called:
                started.callback(None)

        call = session.call(f"webkernel.kernel.{kernel}.execute",
                            code=lines_cell(tag, lines) + "\nimport time; time.sleep(0.2)",
                            options=CallOptions(on_progress=progress, timeout=CALL_TIMEOUT))
        call.addErrback(lambda _: None)   # the connection goes: the call fails here
        await started.addTimeout(CALL_TIMEOUT, self.reactor)
        since = seen[0]["seq"] - 1
        msg_id = seen[0]["parent_msg_id"]
        session._transport.dropConnection(abort=True)
        await session.disconnected
        self.tally.add("dropped_mid_cell")
        # come back as a new session and catch up from the history
        again = await connect_session(self.reactor, self.options.url, WEBKERNEL_REALM,
                                      timeout=60.0)
        try:
            outputs = await self._history_until_idle(again, kernel, since, msg_id)
        finally:
            await close_sessions(self.reactor, [again], timeout=30.0)
        if outputs is None:
            return
        mine = [o for o in outputs if o["parent_msg_id"] == msg_id]
        got = lines_in(mine, tag)
        seqs = [o["seq"] for o in outputs]
        if got != list(range(lines)) or seqs != list(range(since + 1, since + 1 + len(seqs))):
            self.tally.fail(f"{tag}: after the drop the history has {len(got)} of {lines} lines,"
                            f" seqs gap-free: {seqs == list(range(since + 1, since + 1 + len(seqs)))}")
        else:
            self.tally.add("recovered_from_history")
            self.tally.add("lines", lines)

    async def _history_until_idle(self, session, kernel, since, msg_id):
        outputs, deadline = [], time.monotonic() + HISTORY_WAIT
        while time.monotonic() < deadline:
            page = (await session.call(f"webkernel.kernel.{kernel}.outputs",
                                       since=since if not outputs else outputs[-1]["seq"])).kwresults
            if not page["complete"]:
                self.tally.fail(f"{self.tag}: history no longer holds seq {since + 1}")
                return None
            outputs += page["outputs"]
            if any(o["msg_type"] == "status" and o["parent_msg_id"] == msg_id
                   and o["content"].get("execution_state") == "idle" for o in outputs):
                return outputs
            await task.deferLater(self.reactor, 0.2, lambda: None)   # the cell is still running
        self.tally.fail(f"{self.tag}: no idle for the dropped cell within {HISTORY_WAIT:g} s")
        return None


async def lives(reactor, options, tally, rng, slot, until):
    number = 0
    while time.monotonic() < until:
        number += 1
        try:
            await Life(reactor, options, tally, rng, slot * 1_000_000 + number).run()
        except Exception as error:  # noqa: BLE001 - counted; the next life goes on
            where = traceback.extract_tb(error.__traceback__)[-1]
            tally.fail(f"slot {slot} life {number}: {type(error).__name__}: {error}"
                       f" ({os.path.basename(where.filename)}:{where.lineno})")
        await task.deferLater(reactor, rng.uniform(0, options.pause), lambda: None)


async def main(reactor, options):
    rng = random.Random(options.seed)
    tally = Tally()
    until = time.monotonic() + options.minutes * 60
    reporter = task.LoopingCall(lambda: emit(event="tally", counts=tally.counts))
    reporter.clock = reactor
    reporter.start(options.report, now=False)
    await defer.gatherResults([defer.ensureDeferred(lives(reactor, options, tally, rng, slot, until))
                               for slot in range(options.concurrency)], consumeErrors=True)
    reporter.stop()
    emit(event="done", counts=tally.counts, examples=tally.examples)


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kernels", required=True, type=lambda text: text.split(","))
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--pause", type=float, default=1.0,
                        help="most seconds between one life and the next")
    parser.add_argument("--report", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse_options())))
