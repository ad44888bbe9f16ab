"""
Benchmark webkernel's kernels against direct ZeroMQ (jupyter_client) and Jupyter Server.

Runs each system in turn, each with a fresh kernel of the same ``python3`` kernelspec
(see ``kernel_systems.py``), and measures with the same cells:

1. latency: sequential ``1+1`` executions, each until its result is in hand;
2. stream: one cell printing 20,000 flushed lines, until the client has every line;
3. fan-out (webkernel and Jupyter Server): watcher connections in worker processes,
   one cell printing 2,000 flushed lines, until every watcher has every line;

then prints tables and the ratios.  See ``docs/benchmarks.md``.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

from twisted.internet import task
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater

import kernel_report
from kernel_cells import round_tag, stream_code
from kernel_systems import SYSTEMS, BenchEnvironment, make_system
from processes import LoggedProcess, ProcessFailed

LOG_PROBLEM = re.compile(r"Traceback|Unhandled|#critical\]|#error\]|\bERROR\b|^\[E ", re.M)
WARMUP_STREAM_LINES = 500


@dataclass
class SystemResult:
    """Everything measured on one system, pooled over the passes."""

    name: str
    latency: list = field(default_factory=list)
    latency_cpu: dict = field(default_factory=lambda: {"server": 0.0, "kernel": 0.0})
    stream: list = field(default_factory=list)
    fanout: list = field(default_factory=list)
    error: str = None
    log_problems: int = 0


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated systems to run, in order (default: %(default)s)")
    parser.add_argument("--passes", type=int, default=1,
                        help="run the systems in turn this many times (A B C A B C ...), each"
                             " with a fresh server and kernel, pooling the samples, to spread"
                             " out background load (default: %(default)s)")
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"],
                        help="webkernel's WAMP serializer (default: %(default)s)")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--warmup-runs", type=int, default=20,
                        help="1+1 executions before the measured ones (default: %(default)s)")
    parser.add_argument("--stream-lines", type=int, default=20000)
    parser.add_argument("--stream-runs", type=int, default=1, help="stream cells per pass")
    parser.add_argument("--watchers", type=int, default=50, help="0 skips the fan-out")
    parser.add_argument("--watcher-processes", type=int, default=2)
    parser.add_argument("--fanout-lines", type=int, default=2000)
    parser.add_argument("--fanout-rounds", type=int, default=3, help="fan-out cells per pass")
    parser.add_argument("--fanout-grace", type=float, default=30.0,
                        help="seconds the watchers may lag the driver's own result of a fan-out"
                             " cell before the round counts as incomplete (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=90.0,
                        help="seconds for a server and its kernel to be ready")
    parser.add_argument("--phase-timeout", type=float, default=300.0,
                        help="seconds allowed for one measurement phase or round")
    parser.add_argument("--log-dir", help="where logs and the kernels' files go"
                                          " (default: a new temp dir)")
    parser.add_argument("--json", dest="json_path", help="also write the summaries to this file")
    parser.add_argument("--profile", metavar="PY_SPY",
                        help="record the stream and fan-out phases of every system with this"
                             " py-spy executable (server, driver and one watcher process;"
                             " collapsed stacks in the log dir, see profile_summary.py)")
    parser.add_argument("--cprofile", action="store_true",
                        help="run webkernel's twistd under cProfile (twistd --profile): its"
                             " whole life, warm-up and latency included (use --latency-runs 0"
                             " to profile mostly the stream); the stats go to"
                             " cprofile-webkernel-<pass>.pstats in the log dir, see"
                             " profile_summary.py")
    parser.add_argument("--pin", metavar="KERNEL_CPUS:OTHER_CPUS",
                        help="pin every system's kernel to KERNEL_CPUS and this driver, the"
                             " servers and the clients to OTHER_CPUS (taskset lists, e.g. 1:0):"
                             " an ipykernel's speed at printing depends on whether its own"
                             " threads share a CPU with the reader (see docs/benchmarks.md),"
                             " so pinning compares the output paths, not the scheduler's luck")
    options = parser.parse_args(argv)
    if options.pin:
        kernel_cpus, sep, other_cpus = options.pin.partition(":")
        if not (sep and kernel_cpus and other_cpus):
            parser.error("--pin takes KERNEL_CPUS:OTHER_CPUS, e.g. 1:0")
        options.kernel_cpus = kernel_cpus
        # everything this process starts from now on inherits its affinity
        os.sched_setaffinity(0, _cpu_list(other_cpus))
    else:
        options.kernel_cpus = None
    options.systems = options.systems.split(",")
    unknown = set(options.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown system(s): {', '.join(sorted(unknown))}")
    if options.watchers % options.watcher_processes:
        parser.error("--watchers must be a multiple of --watcher-processes")
    return options


def progress(text):
    sys.stderr.write(f"[kernel-bench] {time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


async def bench_system(reactor, result, options, bench_env, log_dir):
    """Start one system, add every measurement on it to ``result``, stop it."""
    system = make_system(result.name, bench_env, options, log_dir)
    progress(f"{result.name}: starting")
    try:
        try:
            await system.start(reactor)
            await _measure(reactor, system, result, options)
        finally:
            progress(f"{result.name}: stopping")
            await system.stop(reactor)
    except Exception as failure:
        result.error = result.error or f"{type(failure).__name__}: {failure}"
        progress(f"{result.name}: FAILED: {result.error}")
        traceback.print_exc()
    result.log_problems = sum(count_log_problems(path) for path in system.log_paths
                              if os.path.exists(path))


def count_log_problems(log_path):
    with open(log_path, encoding="utf-8", errors="replace") as log:
        return len(LOG_PROBLEM.findall(log.read()))


async def _measure(reactor, system, result, options):
    name = result.name
    progress(f"{name}: warm-up ({options.warmup_runs} x 1+1, one {WARMUP_STREAM_LINES}-line cell)")
    await _within(reactor, options, system.latency(reactor, options.warmup_runs))
    await _within(reactor, options, system.stream(reactor, WARMUP_STREAM_LINES))
    progress(f"{name}: latency, {options.latency_runs} x 1+1")
    server, kernel = system.server_cpu(), system.kernel_cpu()
    async with Profiles(reactor, options, system, "latency", [os.getpid()]):
        result.latency.extend(
            await _within(reactor, options, system.latency(reactor, options.latency_runs)))
    if server is not None:
        result.latency_cpu["server"] += system.server_cpu() - server
    if kernel is not None:
        result.latency_cpu["kernel"] += system.kernel_cpu() - kernel
    for run in range(options.stream_runs):
        progress(f"{name}: stream, {options.stream_lines} lines")
        async with Profiles(reactor, options, system, "stream", [os.getpid()]):
            result.stream.append(await _stream(reactor, system, options))
    if system.fanout and options.watchers:
        progress(f"{name}: fan-out, {options.fanout_rounds} x {options.fanout_lines} lines to"
                 f" {options.watchers} watchers in {options.watcher_processes} processes")
        await _fanout(reactor, system, result, options)


def _within(reactor, options, coroutine):
    """``coroutine`` as a Deferred that fails after ``--phase-timeout`` seconds."""
    return Deferred.fromCoroutine(coroutine).addTimeout(options.phase_timeout, reactor)


async def _stream(reactor, system, options):
    server, kernel = system.server_cpu(), system.kernel_cpu()
    run = await _within(reactor, options, system.stream(reactor, options.stream_lines))
    if server is not None:
        run["server_cpu"] = system.server_cpu() - server
    if kernel is not None:
        run["kernel_cpu"] = system.kernel_cpu() - kernel
    return run


async def _fanout(reactor, system, result, options):
    per_process = options.watchers // options.watcher_processes
    workers = [system.start_watchers(reactor, index, per_process, options.fanout_lines)
               for index in range(options.watcher_processes)]
    try:
        for worker in workers:
            await worker.expect(reactor, "ready", options.start_timeout)
        async with Profiles(reactor, options, system, "fanout", [os.getpid(), workers[0].pid]):
            for round_ in range(options.fanout_rounds):
                measured = await _fanout_round(reactor, system, workers, round_, options)
                result.fanout.append(measured)
                if measured["ended_seconds"] is None:
                    break  # a watcher lost the round's end: stop here, the lost lines say enough
    finally:
        stopping = [Deferred.fromCoroutine(worker.stop(reactor)) for worker in workers]
        await gatherResults(stopping, consumeErrors=True)


async def _fanout_round(reactor, system, workers, round_, options):
    """One fan-out cell; its times from just before the driver sent it (monotonic clock)."""
    deliveries = options.watchers * options.fanout_lines
    code = stream_code(options.fanout_lines, round_tag(round_))
    server, kernel = system.server_cpu(), system.kernel_cpu()
    start = time.monotonic()
    await _within(reactor, options, system.run_cell(code))
    # The watchers' connections may lag the driver's: allow them the grace period
    # after the driver has the whole result of its cell.
    deadline = time.monotonic() + options.fanout_grace
    tallies = []
    for worker in workers:
        try:
            tally = await worker.expect(reactor, "done", max(0.0, deadline - time.monotonic()))
        except ProcessFailed:
            if not worker.running:
                raise
            worker.command(command="report", round=round_)
            tally = await worker.expect(reactor, ("done", "status"), options.start_timeout)
            if tally["event"] == "done":  # it came just then: a status follows, skip it
                await worker.expect(reactor, "status", options.start_timeout)
        if tally["round"] != round_:
            raise ProcessFailed(f"{worker.name}: {tally['event']} for round {tally['round']},"
                                f" not {round_}")
        tallies.append(tally)
    complete = all(t["last_at"] is not None for t in tallies)
    ended = all(t["ended_at"] is not None for t in tallies)
    last_lines = [t["last_line_at"] for t in tallies if t["last_line_at"] is not None]
    measured = {
        "deliveries": deliveries,
        "seconds": max(t["last_at"] for t in tallies) - start if complete else None,
        "ended_seconds": max(t["ended_at"] for t in tallies) - start if ended else None,
        "last_line_seconds": max(last_lines) - start if last_lines else None,
        "watchers_ended": sum(t["ended"] for t in tallies),
        "received": sum(sum(t["received"]) for t in tallies),
        "missing": sum(t["missing"] for t in tallies),
        "disorder": sum(t["disorder"] for t in tallies),
    }
    if server is not None:
        measured["server_cpu"] = system.server_cpu() - server
    if kernel is not None:
        measured["kernel_cpu"] = system.kernel_cpu() - kernel
    if not ended:
        progress(f"{system.name}: fan-out round {round_}: {measured['watchers_ended']} of"
                 f" {options.watchers} watchers saw its end within {options.fanout_grace:g} s"
                 f" of the driver's; {measured['missing']:,} lines missing")
    return measured


class Profiles:
    """With ``--profile``: py-spy records the server, and the given client pids, meanwhile.

    Each recording goes to ``<log dir>/profile-<system>-<phase>-<role>.txt`` (collapsed
    stacks, with thread names and idle frames); ``profile_summary.py`` ranks the functions.
    """

    def __init__(self, reactor, options, system, phase, client_pids):
        self.reactor = reactor
        self.recorders = []
        if not options.profile:
            return
        targets = [("server", system.server.pid)] if system.server else []
        targets += [("driver" if pid == os.getpid() else f"client{index}", pid)
                    for index, pid in enumerate(client_pids)]
        if system.kernel_pid:
            targets.append(("kernel", system.kernel_pid))
        for role, pid in targets:
            stem = os.path.join(system.log_dir, f"profile-{system.name}-{phase}-{role}")
            argv = [options.profile, "record", "--pid", str(pid), "--rate", "250",
                    "--format", "raw", "--threads", "--idle", "--nonblocking",
                    "--output", stem + ".txt"]
            self.recorders.append(LoggedProcess(f"py-spy {role}", stem + ".log")
                                  .spawn(reactor, argv))

    async def __aenter__(self):
        if self.recorders:
            await deferLater(self.reactor, 1.0, lambda: None)  # let py-spy attach
        return self

    async def __aexit__(self, *exc_info):
        stopping = [Deferred.fromCoroutine(recorder.stop(self.reactor, 30.0, signal="INT"))
                    for recorder in self.recorders]  # py-spy writes its output on SIGINT
        await gatherResults(stopping, consumeErrors=True)


def render(summaries, options, log_dir):
    found = kernel_report.ratios(summaries)
    lines = [
        f"latency: {options.latency_runs} x 1+1 (+{options.warmup_runs} warm-up);"
        f" stream: {options.stream_lines:,} lines x {options.stream_runs};"
        f" fan-out: {options.watchers} watchers in {options.watcher_processes} processes,"
        f" {options.fanout_lines:,} lines x {options.fanout_rounds};"
        f" webkernel serializer={options.serializer}; passes={options.passes}; cpus={os.cpu_count()}"
        + (f"; pinned: kernels on CPU {options.kernel_cpus}, the rest on"
           f" {','.join(map(str, sorted(os.sched_getaffinity(0))))}" if options.kernel_cpus else ""),
        "",
        kernel_report.latency_table(summaries),
        "",
        kernel_report.stream_table(summaries, options.stream_lines),
        "",
    ]
    if options.watchers:
        lines += [kernel_report.fanout_table(summaries), ""]
    lines += kernel_report.ratio_lines(found)
    lines += [f"{s['system']}: {s['error']}" for s in summaries if s["error"]]
    lines += [f"{s['system']}: {s['log_problems']} traceback/error lines in its logs"
              for s in summaries if s["log_problems"]]
    lines.append(f"logs: {log_dir}")
    return "\n".join(lines) + "\n", found


def _cpu_list(text):
    """The CPUs of a taskset-style list such as ``0``, ``0,2`` or ``0-3``."""
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


async def main(reactor, options):
    log_dir = os.path.abspath(options.log_dir or tempfile.mkdtemp(prefix="kernel-bench-"))
    os.makedirs(log_dir, exist_ok=True)
    bench_env = BenchEnvironment(log_dir, kernel_cpus=options.kernel_cpus)
    results = [SystemResult(name) for name in options.systems]
    try:
        for pass_number in range(1, options.passes + 1):
            progress(f"pass {pass_number} of {options.passes}")
            for result in results:
                if not result.error:
                    await bench_system(reactor, result, options, bench_env, log_dir)
    finally:
        leftovers = bench_env.kill_leftovers()
        if leftovers:
            progress(f"killed {len(leftovers)} kernel processes left running: {leftovers}")
    summaries = [kernel_report.summarize(result, options) for result in results]
    text, found = render(summaries, options, log_dir)
    sys.stdout.write(text)
    if options.json_path:
        with open(options.json_path, "w") as out:
            json.dump({"options": vars(options), "results": summaries, "ratios": found,
                       "raw": [vars(r) for r in results]}, out, indent=2)
    if any(summary["error"] for summary in summaries) or leftovers:
        raise SystemExit(1)


if __name__ == "__main__":
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, parse_options())))
