"""
The two measurements of the router benchmark, identical for every router.

``measure_rpc``: a caller session in this process calls the echo procedure of
a callee session in a worker process, sequentially, and records each round trip.

``measure_fanout``: subscriber sessions in worker processes, one publisher
session here publishing every event of a round at once (acknowledge=False, no
pacing).  A round's time runs from just before the first publish to the moment
the last subscriber session received its last event (reported by the worker
with the system-wide monotonic clock).
"""

import os
import sys
import time
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, gatherResults

from autobahn.wamp.types import PublishOptions

from bench_worker import ECHO_PROCEDURE, FANOUT_TOPIC
from processes import ProcessFailed, WorkerProcess
from wamp_client import close_sessions, connect_session

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_worker.py")
NO_ACK = PublishOptions(acknowledge=False)


class WrongEcho(Exception):
    """The echo procedure returned something other than its argument."""


@dataclass
class FanoutRound:
    """One fan-out round: deliveries per second, or how many deliveries were missing."""

    deliveries: int
    seconds: float = None
    publish_seconds: float = None
    missing: int = 0
    anomalies: int = 0
    cpu_seconds: float = None

    @property
    def rate(self):
        return self.deliveries / self.seconds if self.seconds else None


@dataclass
class RouterResult:
    """Everything measured against one router."""

    name: str
    rpc_seconds: list = field(default_factory=list)
    rpc_cpu_seconds: float = 0.0
    fanout: list = field(default_factory=list)
    error: str = None
    log_problems: int = 0


def start_worker(reactor, name, role, url, options, log_dir, *extra):
    """Spawn a ``bench_worker.py`` process; it says ``ready`` once its sessions have joined."""
    argv = [
        sys.executable, WORKER_SCRIPT, role, "--url", url,
        "--realm", options.realm, "--serializer", options.serializer, *extra,
    ]
    worker = WorkerProcess(name, os.path.join(log_dir, f"{name}.log"))
    return worker.spawn(reactor, argv)


async def measure_rpc(reactor, url, options, log_dir, result, router_cpu):
    """Add to ``result`` the round trip of each measured echo call and the router's CPU time."""
    callee = start_worker(reactor, f"{result.name}-callee", "callee", url, options, log_dir)
    caller = None
    try:
        await callee.expect(reactor, "ready", options.join_timeout)
        caller = await connect_session(reactor, url, options.realm, options.serializer)
        payload = "x" * options.payload_bytes
        warmup = _echo_calls(caller, payload, options.warmup_calls, [])
        await _within(reactor, options.phase_timeout, warmup)
        cpu_before = router_cpu()
        measured = _echo_calls(caller, payload, options.calls, result.rpc_seconds)
        await _within(reactor, options.phase_timeout, measured)
        result.rpc_cpu_seconds += router_cpu() - cpu_before
    finally:
        await close_sessions(reactor, [caller] if caller else [])
        await callee.stop(reactor)


def _within(reactor, timeout, coroutine):
    return Deferred.fromCoroutine(coroutine).addTimeout(timeout, reactor)


async def _echo_calls(caller, payload, count, samples):
    """Make ``count`` sequential echo calls, appending each round trip to ``samples``."""
    for _ in range(count):
        start = time.perf_counter()
        echoed = await caller.call(ECHO_PROCEDURE, payload)
        samples.append(time.perf_counter() - start)
        if echoed != payload:
            raise WrongEcho(f"echo returned {echoed!r:.60}")


async def measure_fanout(reactor, url, options, log_dir, result, router_cpu):
    """Append to ``result.fanout`` a ``FanoutRound`` per round, up to the first incomplete one."""
    workers = _start_subscribers(reactor, url, options, log_dir, result.name)
    publisher = None
    try:
        for worker in workers:
            await worker.expect(reactor, "ready", options.join_timeout)
        publisher = await connect_session(reactor, url, options.realm, options.serializer)
        for round_ in range(options.fanout_rounds):
            cpu_before = router_cpu()
            measured = await _fanout_round(reactor, publisher, workers, round_, options)
            measured.cpu_seconds = router_cpu() - cpu_before
            result.fanout.append(measured)
            if measured.missing:
                break
    finally:
        await close_sessions(reactor, [publisher] if publisher else [])
        stopping = [Deferred.fromCoroutine(worker.stop(reactor)) for worker in workers]
        await gatherResults(stopping, consumeErrors=True)


def _start_subscribers(reactor, url, options, log_dir, router_name):
    per_process = options.subscribers // options.subscriber_processes
    extra = ("--sessions", str(per_process), "--events", str(options.events))
    return [
        start_worker(reactor, f"{router_name}-subscribers-{index}", "subscribers",
                     url, options, log_dir, *extra)
        for index in range(options.subscriber_processes)
    ]


async def _fanout_round(reactor, publisher, workers, round_, options):
    payload = "x" * options.payload_bytes
    deliveries = options.subscribers * options.events
    start = time.monotonic()
    for seq in range(options.events):
        publisher.publish(FANOUT_TOPIC, round_, seq, payload, options=NO_ACK)
    published = time.monotonic() - start
    try:
        dones = await _all_done(reactor, workers, options.phase_timeout)
    except ProcessFailed:
        return await _incomplete_round(reactor, workers, round_, deliveries, options)
    return FanoutRound(
        deliveries=deliveries,
        seconds=max(done["last_at"] for done in dones) - start,
        publish_seconds=published,
        anomalies=sum(done["anomalies"] for done in dones),
    )


async def _all_done(reactor, workers, timeout):
    """Each worker's ``done`` event, all within ``timeout`` (workers time their own events)."""
    deadline = time.monotonic() + timeout
    return [
        await worker.expect(reactor, "done", max(0.0, deadline - time.monotonic()))
        for worker in workers
    ]


async def _incomplete_round(reactor, workers, round_, deliveries, options):
    """Ask each subscriber process what it got of a round that did not complete in time."""
    statuses = []
    for worker in workers:
        if worker.running:
            worker.command(command="report", round=round_)
            statuses.append(await worker.expect(reactor, "status", options.join_timeout))
    received = sum(sum(status["received"]) for status in statuses)
    return FanoutRound(
        deliveries=deliveries, missing=deliveries - received,
        anomalies=sum(status["anomalies"] for status in statuses),
    )
