"""
Slow-peer benchmark: do fast subscribers keep their speed beside one that never reads,
and does the service's memory stay bounded while a kernel prints 200 MB?
(docs/benchmarks.md, "A peer that never reads"; docs/reliability.md.)

One webkernel service with its default limits, one kernel, ``--fast`` subscriber
processes (``slow_peer_worker.py``, MessagePack, one session each). Each round runs a
cell that prints ``--megabytes`` MB of stdout in 100 kB flushes; a round ends when
every fast subscriber has received every byte of it. Rounds alternate: alone, then
with a slow peer (a session subscribed to the kernel's iopub whose connection stops
reading at once: the operating system's buffers fill and the service must hold or
drop what it cannot send), ``--passes`` times. It reports the median round time of
each kind and their ratio (the promise: with / alone <= 1.10), gap markers seen by
fast subscribers (should be none), and the service's peak RSS in each kind of round
(the promise: under ``--rss-bound`` MiB).  Exit status 1 if a promise is not kept.

    bench/run_load_bench.sh --slow-peer
    bench/run_load_bench.sh --slow-peer --megabytes 20 --passes 1
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer, task

from kernel_cells import KERNEL_NAME, WEBKERNEL_REALM
from kernel_systems import SERVING, BenchEnvironment
from load_bench import MiB, MemorySampler
from processes import LoggedProcess, WorkerProcess
from routers import BENCH_DIR, TWISTD_BIN
from wamp_client import close_sessions, connect_session

WORKER = os.path.join(BENCH_DIR, "slow_peer_worker.py")
CHUNK_LINES = 100            # lines of 1,000 bytes per flush: 100 kB stream messages


def progress(text):
    sys.stderr.write(f"[slow-peer-bench] {time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


def cell(tag, megabytes):
    chunks = megabytes * 10
    code = (f"import sys\nsys.stdout.write({tag!r} + '\\n'); sys.stdout.flush()\n"
            f"chunk = ('x' * 999 + '\\n') * {CHUNK_LINES}\n"
            f"for i in range({chunks}):\n    sys.stdout.write(chunk); sys.stdout.flush()\n")
    return code, len(tag) + 1 + chunks * CHUNK_LINES * 1000


async def slow_peer(reactor, url, kernel):
    """A session subscribed to the kernel's iopub that stops reading from its socket at once."""
    session = await connect_session(reactor, url, WEBKERNEL_REALM, "msgpack")
    await session.subscribe(lambda *a, **k: None, f"webkernel.kernel.{kernel}.iopub",
                            options=SubscribeOptions(match="prefix"))
    session._transport.transport.pauseProducing()
    return session


async def run_round(reactor, options, control, kernel, workers, server_pid, tag):
    code, expected = cell(tag, options.megabytes)
    for worker in workers:
        worker.command(tag=tag, bytes=expected, timeout=options.round_timeout)
    sampler = MemorySampler(reactor, server_pid, interval=0.2)
    began = time.monotonic()
    result = await control.call(f"webkernel.kernel.{kernel}.execute", code=code)
    if result.kwresults["status"] != "ok":
        raise RuntimeError(f"{tag}: status {result.kwresults['status']}")
    executed_at = time.monotonic()
    reports = [await worker.expect(reactor, "round_done", options.round_timeout + 10)
               for worker in workers]
    peak = sampler.stop()
    done_at = max([r["done_at"] for r in reports] + [executed_at])
    return {"seconds": done_at - began, "rss_peak": peak,
            "gaps": sum(r["gaps"] for r in reports),
            "coalesced": sum(r["coalesced"] for r in reports)}


async def main(reactor, options):
    options.log_dir = os.path.abspath(options.log_dir or tempfile.mkdtemp(prefix="slow-peer-bench-"))
    bench_env = BenchEnvironment(options.log_dir)
    argv = [TWISTD_BIN, "-n", "--pidfile=", "webkernel", "--anonymous",
            "--listen", "tcp:0:interface=127.0.0.1",
            "--kernel-dir", bench_env.dirs["webkernel-kernels"]]
    server = LoggedProcess("webkernel", os.path.join(options.log_dir, "webkernel-server.log"))
    server.spawn(reactor, argv, cwd=bench_env.work_dir, env=bench_env.env)
    workers, sessions = [], []
    rounds = {"alone": [], "slow peer": []}
    try:
        url = f"ws://127.0.0.1:{(await server.wait_for_output(reactor, SERVING, 90)).group(1)}/ws"
        control = await connect_session(reactor, url, WEBKERNEL_REALM, "msgpack")
        sessions.append(control)
        kernel = (await control.call("webkernel.kernels.start", kernel_name=KERNEL_NAME))["id"]
        for index in range(options.fast):
            worker = WorkerProcess(f"fast-{index}", os.path.join(options.log_dir, f"fast-{index}.log"))
            worker.spawn(reactor, [sys.executable, WORKER, "--url", url, "--kernel", kernel],
                         cwd=BENCH_DIR, env=bench_env.env)
            workers.append(worker)
            await worker.expect(reactor, "ready", 60)
        # one warm-up round, not counted
        await run_round(reactor, options, control, kernel, workers, server.pid, "warm-up")
        for number in range(options.passes):
            for kind in rounds:
                peer = await slow_peer(reactor, url, kernel) if kind == "slow peer" else None
                measured = await run_round(reactor, options, control, kernel, workers, server.pid,
                                           f"round {number} {kind}")
                if peer is not None:
                    measured["slow_peer_open"] = peer.is_attached()
                    peer._transport.transport.abortConnection()
                rounds[kind].append(measured)
                progress(f"pass {number + 1}, {kind}: {measured['seconds']:.2f} s, service RSS peak"
                         f" {measured['rss_peak'] / MiB:.0f} MiB")
    finally:
        for worker in workers:
            await worker.stop(reactor)
        await close_sessions(reactor, sessions)
        await server.stop(reactor, timeout=60.0)
        bench_env.kill_leftovers()
    alone = statistics.median(r["seconds"] for r in rounds["alone"])
    slow = statistics.median(r["seconds"] for r in rounds["slow peer"])
    peak_slow = max(r["rss_peak"] for r in rounds["slow peer"])
    peak_alone = max(r["rss_peak"] for r in rounds["alone"])
    gaps = sum(r["gaps"] for kind in rounds.values() for r in kind)
    ratio = slow / alone
    sys.stdout.write("\n".join([
        f"\n## A peer that never reads: {options.megabytes} MB printed, {options.fast} fast"
        f" subscribers (MessagePack), {options.passes} passes\n",
        "| | alone | beside a peer that never reads |", "|---|---|---|",
        f"| fast subscribers have every byte after (median s) | {alone:.2f} | {slow:.2f} |",
        f"| service RSS peak (MiB) | {peak_alone / MiB:.0f} | {peak_slow / MiB:.0f} |",
        f"| coalesced outputs at fast subscribers | "
        f"{sum(r['coalesced'] for r in rounds['alone'])} | "
        f"{sum(r['coalesced'] for r in rounds['slow peer'])} |",
        f"\nwith / alone: {ratio:.3f} (promise <= 1.10); gap markers at fast subscribers: {gaps};"
        f" slow peer still connected after each round: "
        f"{all(r.get('slow_peer_open') for r in rounds['slow peer'])}",
        f"\nLogs: {options.log_dir}\n"]))
    if ratio > 1.10 or gaps or peak_slow > options.rss_bound * MiB:
        raise SystemExit(1)


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--fast", type=int, default=2,
                        help="fast subscriber processes; with 0 a round is the driver's execute"
                             " call alone (for the memory bound at sizes no Python subscriber"
                             " keeps up with)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--rss-bound", type=int, default=400,
                        help="MiB the service's RSS must stay under (default: %(default)s)")
    parser.add_argument("--round-timeout", type=float, default=600.0)
    parser.add_argument("--log-dir")
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse_options())))
