"""
Soak benchmark: clients connect, execute and drop at random for ``--minutes`` against one
webkernel service; its memory must stay flat and nothing may be lost (docs/benchmarks.md,
"Soak").

The service runs with its defaults (``--anonymous`` aside) and ``--kernels`` kernels.
``--workers`` processes (``soak_worker.py``) each keep ``--concurrency`` client lives
going (join, run cells, leave or drop abruptly, some mid-cell). Beside them an auditor
session subscribed to every kernel's iopub checks that every seq of every kernel
arrives, in order, exactly once, for the whole run, and at the end that its last seq
is the kernel's. Every ``--sample`` seconds the service's RSS is recorded (CSV in the
log directory) with how full the kernels' output histories are, and once a minute a
progress line is shown.

It reports the RSS at the end of the warm-up (``--warmup`` minutes: the histories,
bounded by ``--history-messages``, fill up first), at the end and at its peak, the
slope of a least-squares line through the samples after the warm-up, and the tallies:
lives, executions, lines checked, drops and what was recovered after them, failures.

    bench/run_load_bench.sh --soak                    # 30 minutes
    bench/run_load_bench.sh --soak --minutes 3 --warmup 1
"""

import argparse
import os
import sys
import tempfile
import time

from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer, task

from kernel_cells import KERNEL_NAME, WEBKERNEL_REALM
from kernel_systems import SERVING, BenchEnvironment
from load_bench import MiB, MemorySampler, rss
from processes import LoggedProcess, WorkerProcess
from routers import BENCH_DIR, TWISTD_BIN
from wamp_client import close_sessions, connect_session

WORKER = os.path.join(BENCH_DIR, "soak_worker.py")


def progress(text):
    sys.stderr.write(f"[soak-bench] {time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


class Auditor:
    """Every seq of every kernel, in order, exactly once."""

    def __init__(self, kernels):
        self.last = {kernel: None for kernel in kernels}
        self.events = 0
        self.problems = []

    def event(self, kernel, output):
        self.events += 1
        seq, last = output["seq"], self.last[kernel]
        if last is not None and seq != last + 1 and len(self.problems) < 20:
            self.problems.append(f"kernel {kernel[:8]}: seq {seq} after {last}")
        if output.get("msg_type") == "gap" and len(self.problems) < 20:
            self.problems.append(f"kernel {kernel[:8]}: gap marker {output}")
        self.last[kernel] = max(seq, last or 0)


def slope_per_hour(samples):
    """Least-squares slope of (seconds, bytes) samples, in MiB per hour."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return (cov / var) * 3600 / MiB if var else 0.0


async def main(reactor, options):
    options.log_dir = os.path.abspath(options.log_dir or tempfile.mkdtemp(prefix="soak-bench-"))
    bench_env = BenchEnvironment(options.log_dir)
    argv = [TWISTD_BIN, "-n", "--pidfile=", "webkernel", "--anonymous",
            "--listen", "tcp:0:interface=127.0.0.1", "--max-kernels", str(options.kernels),
            "--history-messages", str(options.history_messages),
            "--kernel-dir", bench_env.dirs["webkernel-kernels"]]
    server = LoggedProcess("webkernel", os.path.join(options.log_dir, "webkernel-server.log"))
    server.spawn(reactor, argv, cwd=bench_env.work_dir, env=bench_env.env)
    workers, sessions = [], []
    try:
        url = f"ws://127.0.0.1:{(await server.wait_for_output(reactor, SERVING, 90)).group(1)}/ws"
        control = await connect_session(reactor, url, WEBKERNEL_REALM)
        sessions.append(control)
        kernels = []
        for _ in range(options.kernels):
            kernels.append((await control.call("webkernel.kernels.start",
                                               kernel_name=KERNEL_NAME))["id"])
        progress(f"{len(kernels)} kernels ready")
        auditor = Auditor(kernels)
        audit = await connect_session(reactor, url, WEBKERNEL_REALM, "msgpack")
        sessions.append(audit)
        for kernel in kernels:
            await audit.subscribe(lambda *a, _kernel=kernel, **output: auditor.event(_kernel, output),
                                  f"webkernel.kernel.{kernel}.iopub",
                                  options=SubscribeOptions(match="prefix"))
        for index in range(options.workers):
            worker = WorkerProcess(f"soak-worker-{index}",
                                   os.path.join(options.log_dir, f"soak-worker-{index}.log"))
            worker.spawn(reactor, [sys.executable, WORKER, "--url", url, "--kernels", ",".join(kernels),
                                   "--worker", str(index), "--concurrency", str(options.concurrency),
                                   "--minutes", str(options.minutes), "--report", "60",
                                   "--seed", str(options.seed + index)],
                         cwd=BENCH_DIR, env=bench_env.env)
            workers.append(worker)

        began = time.monotonic()
        samples = []   # (seconds, rss, kernels whose history is full)
        csv = open(os.path.join(options.log_dir, "soak-rss.csv"), "w")
        csv.write("seconds,rss_bytes,full_histories,auditor_events\n")

        async def sample():
            full = 0
            for kernel in kernels:
                page = (await control.call(f"webkernel.kernel.{kernel}.outputs",
                                           since=0, limit=1)).kwresults
                full += page["first_seq"] > 1
            point = (time.monotonic() - began, rss(server.pid), full)
            samples.append(point)
            csv.write(f"{point[0]:.1f},{point[1]},{full},{auditor.events}\n")
            csv.flush()

        sampler = task.LoopingCall(lambda: defer.ensureDeferred(sample()))
        sampler.clock = reactor
        sampler.start(options.sample)
        peak = MemorySampler(reactor, server.pid, interval=1.0)
        tallies = [None] * len(workers)

        async def follow(index, worker):
            while True:
                message = await worker.expect(reactor, ("tally", "done"), options.minutes * 60 + 600)
                tallies[index] = message
                if message["event"] == "done":
                    return
                if index == 0:
                    counts = [t["counts"] for t in tallies if t]
                    total = {k: sum(c[k] for c in counts) for k in counts[0]}
                    progress(f"{(time.monotonic() - began) / 60:.0f} min: RSS"
                             f" {samples[-1][1] / MiB:.0f} MiB, histories full {samples[-1][2]}/"
                             f"{len(kernels)}, lives {total['lives']}, executions"
                             f" {total['executions']}, drops {total['dropped_mid_cell']}"
                             f"+{total['dropped_idle']}, failures {total['failures']},"
                             f" auditor problems {len(auditor.problems)}")

        await defer.gatherResults([defer.ensureDeferred(follow(i, w)) for i, w in enumerate(workers)],
                                  consumeErrors=True)
        sampler.stop()
        await sample()
        rss_peak = peak.stop()
        csv.close()
        # the auditor has every seq up to the kernel's last
        behind = []
        for kernel in kernels:
            page = (await control.call(f"webkernel.kernel.{kernel}.outputs",
                                       since=auditor.last[kernel] or 0)).kwresults
            if page["outputs"]:
                behind.append(f"{kernel[:8]}: {len(page['outputs'])} outputs after the auditor's last")
        report(options, samples, rss_peak, tallies, auditor, behind)
        failed = any(t["counts"]["failures"] for t in tallies) or auditor.problems or behind
        if failed:
            raise SystemExit(1)
    finally:
        for worker in workers:
            await worker.stop(reactor, timeout=60.0)
        await close_sessions(reactor, sessions)
        await server.stop(reactor, timeout=120.0)
        leftovers = bench_env.kill_leftovers()
        if leftovers:
            progress(f"killed {len(leftovers)} kernel processes left running")


def report(options, samples, rss_peak, tallies, auditor, behind):
    warm = [(t, m) for t, m, _ in samples if t >= options.warmup * 60]
    counts = [t["counts"] for t in tallies]
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    examples = [e for t in tallies for e in t.get("examples", [])]
    full_at = next((t for t, _, full in samples if full == options.kernels), None)
    out = [f"\n## Soak: {options.minutes:g} minutes, {options.kernels} kernels,"
           f" {options.workers} x {options.concurrency} concurrent client lives\n",
           "| | |", "|---|---|",
           f"| service RSS at start | {samples[0][1] / MiB:.0f} MiB |",
           "| every kernel's history full after | "
           + (f"{full_at / 60:.1f} min |" if full_at is not None else "never |"),
           f"| RSS after the {options.warmup:g}-minute warm-up | {warm[0][1] / MiB:.0f} MiB |"
           if warm else "| RSS after warm-up | - |",
           f"| RSS at the end | {samples[-1][1] / MiB:.0f} MiB |",
           f"| RSS peak | {rss_peak / MiB:.0f} MiB |",
           f"| RSS slope after warm-up | {slope_per_hour(warm):+.1f} MiB/hour |"]
    for key, label in [("lives", "client lives"), ("executions", "executions checked"),
                       ("lines", "printed lines checked"), ("left", "left cleanly"),
                       ("dropped_mid_cell", "dropped mid-cell"),
                       ("recovered_from_history", "dropped cells found whole in the history"),
                       ("dropped_idle", "dropped between cells"),
                       ("subscribed_lives", "lives subscribed (seqs checked)"),
                       ("failures", "failures")]:
        out.append(f"| {label} | {total[key]} |")
    out.append(f"| auditor: events / seq problems | {auditor.events} / {len(auditor.problems)} |")
    out.append(f"| auditor behind the kernels at the end | {len(behind)} |")
    for line in auditor.problems[:10] + examples[:10] + behind[:10]:
        out.append(f"\n- {line}")
    out.append(f"\nLogs and soak-rss.csv: {options.log_dir}\n")
    sys.stdout.write("\n".join(out))


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5,
                        help="minutes before memory must be flat (default: %(default)s)")
    parser.add_argument("--kernels", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="client lives per worker")
    parser.add_argument("--history-messages", type=int, default=10000,
                        help="the service's --history-messages (default: its default)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-dir")
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse_options())))
