"""
Load benchmark: many kernels and many client sessions on one machine, webkernel beside
Jupyter Server (see docs/benchmarks.md, "Load").

For each system: start the server, start ``--kernels`` kernels (a few at a time,
progress shown), open ``--sessions`` client sessions in ``--workers`` worker processes
(``load_worker.py``), each session receiving every iopub message of its kernel
(sessions are spread round robin, so each kernel has sessions/kernels of them), then
let every session run ``--executions`` cells one after another, all at once. It
reports whether every execution completed with the right result, whether every
session received every iopub message of its kernel (on webkernel also: every seq,
in order), the latency of an execution (request to final result) at p50 and p99,
iopub deliveries per second, and the server process's memory: per kernel (after
the kernels started, over the empty server) and per session (after the sessions
joined, over that), its peak while running, and the kernels' own memory.

    bench/run_load_bench.sh                       # 100 kernels, 300 sessions, both systems
    bench/run_load_bench.sh --systems webkernel --kernels 10 --sessions 30
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from twisted.internet import defer, task

from cpu import process_cpu_seconds
from kernel_cells import KERNEL_NAME, WEBKERNEL_REALM
from kernel_clients import JupyterKernel
from kernel_systems import SERVING, BenchEnvironment, JupyterSystem
from processes import LoggedProcess, WorkerProcess
from routers import BENCH_DIR, TWISTD_BIN
from wamp_client import close_sessions, connect_session

SYSTEMS = ("webkernel", "jupyter")
WORKER = os.path.join(BENCH_DIR, "load_worker.py")
MiB = 1024 * 1024


def progress(text):
    sys.stderr.write(f"[load-bench] {time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


def rss(pid):
    """Resident memory of process ``pid`` in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemorySampler:
    """The peak RSS of one process, sampled every ``interval`` seconds while running."""

    def __init__(self, reactor, pid, interval=0.5):
        self.pid, self.peak = pid, rss(pid)
        self._loop = task.LoopingCall(self._sample)
        self._loop.clock = reactor
        self._loop.start(interval)

    def _sample(self):
        self.peak = max(self.peak, rss(self.pid))

    def stop(self):
        self._sample()
        self._loop.stop()
        return self.peak


async def bounded(coroutines, limit):
    """Run the coroutine functions ``coroutines`` at most ``limit`` at a time, in order."""
    results, running = [None] * len(coroutines), defer.DeferredSemaphore(limit)

    async def one(index):
        await running.acquire()
        try:
            results[index] = await coroutines[index]()
        finally:
            running.release()

    await defer.gatherResults([defer.ensureDeferred(one(i)) for i in range(len(coroutines))],
                              consumeErrors=True)
    return results


class Webkernel:
    name = "webkernel"

    def __init__(self, reactor, options, bench_env, log_dir):
        self.reactor, self.options, self.bench_env = reactor, options, bench_env
        self.log_path = os.path.join(log_dir, "webkernel-server.log")

    async def start(self):
        argv = [TWISTD_BIN, "-n", "--pidfile=", "webkernel", "--anonymous",
                "--listen", "tcp:0:interface=127.0.0.1",
                "--max-kernels", str(self.options.kernels),
                "--kernel-dir", self.bench_env.dirs["webkernel-kernels"]]
        self.server = LoggedProcess(self.name, self.log_path)
        self.server.spawn(self.reactor, argv, cwd=self.bench_env.work_dir, env=self.bench_env.env)
        serving = await self.server.wait_for_output(self.reactor, SERVING, 90.0)
        self.url = f"ws://127.0.0.1:{serving.group(1)}/ws"
        self.control = await connect_session(self.reactor, self.url, WEBKERNEL_REALM)

    async def start_kernel(self):
        model = await self.control.call("webkernel.kernels.start", kernel_name=KERNEL_NAME) \
            .addTimeout(self.options.kernel_timeout, self.reactor)
        return model["id"]

    def worker_args(self):
        return ["webkernel", "--url", self.url, "--serializer", self.options.serializer]

    async def stop(self):
        try:
            await close_sessions(self.reactor, [self.control])
        finally:
            await self.server.stop(self.reactor, timeout=120.0)


class Jupyter(JupyterSystem):
    """Jupyter Server with its default settings; kernels created with ``POST /api/kernels``."""

    def __init__(self, reactor, options, bench_env, log_dir):
        super().__init__(bench_env, options, log_dir)
        self.reactor = reactor
        self.options.start_timeout = 90.0

    async def start(self):
        await self.start_server(self.reactor)

    async def start_kernel(self):
        kernel_id = await JupyterKernel.create(self.reactor, self.base_url, self.token)
        # ready = answers kernel_info through the server (what a client's first request needs)
        kernel = await JupyterKernel(self.base_url, self.token, kernel_id).connect(
            self.reactor, timeout=self.options.kernel_timeout)
        await kernel.close(self.reactor)
        return kernel_id

    def worker_args(self):
        return ["jupyter", "--url", self.base_url, "--token", self.token]

    async def stop(self):
        await self.server.stop(self.reactor, timeout=120.0)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else None


async def bench_system(reactor, system, options):
    """Run the whole load on one system; its summary (a dict)."""
    out = {"system": system.name}
    await system.start()
    server_pid = system.server.pid
    workers = []
    try:
        out["rss_empty"] = rss(server_pid)
        began = time.monotonic()
        done = [0]

        def starter():
            async def start_one():
                kernel_id = await system.start_kernel()
                done[0] += 1
                if done[0] % 10 == 0 or done[0] == options.kernels:
                    progress(f"{system.name}: {done[0]}/{options.kernels} kernels ready"
                             f" ({time.monotonic() - began:.0f} s)")
                return kernel_id
            return start_one

        kernels = await bounded([starter() for _ in range(options.kernels)],
                                options.start_concurrency)
        out["kernel_start_s"] = time.monotonic() - began
        out["rss_kernels"] = rss(server_pid)
        kernel_pids = system.bench_env.leftover_kernels()
        out["kernel_processes"] = len(kernel_pids)
        out["kernel_rss_mean"] = statistics.mean(rss(pid) for pid in kernel_pids) if kernel_pids else 0

        per_worker = options.sessions // options.workers
        for index in range(options.workers):
            worker = WorkerProcess(f"{system.name}-worker-{index}",
                                   os.path.join(options.log_dir, f"{system.name}-worker-{index}.log"))
            worker.spawn(reactor, [sys.executable, WORKER, *system.worker_args(),
                                   "--kernels", ",".join(kernels), "--sessions", str(per_worker),
                                   "--offset", str(index * per_worker),
                                   "--executions", str(options.executions)],
                         cwd=BENCH_DIR, env=system.bench_env.env)
            workers.append(worker)
        opened = 0
        for worker in workers:
            opened += (await worker.expect(reactor, "ready", options.phase_timeout))["sessions"]
        progress(f"{system.name}: {opened} sessions open")
        out["sessions"] = opened
        out["rss_sessions"] = rss(server_pid)

        sessions_per_kernel = {kernel_id: 0 for kernel_id in kernels}
        for i in range(opened):
            sessions_per_kernel[kernels[i % len(kernels)]] += 1
        # executions on each kernel: every session on it must see the idle of each
        expect = {kernel_id: count * options.executions
                  for kernel_id, count in sessions_per_kernel.items()}
        sampler = MemorySampler(reactor, server_pid)
        cpu_before = process_cpu_seconds(server_pid)
        for worker in workers:
            worker.command(command="go", expect=expect)
        progress(f"{system.name}: running {opened} x {options.executions} executions")
        reports = []
        for worker in workers:
            reports.append(await worker.expect(reactor, "done", options.phase_timeout))
        out["server_cpu_s"] = process_cpu_seconds(server_pid) - cpu_before
        out["rss_peak"] = sampler.stop()
        out["rss_after"] = rss(server_pid)
        summarize(out, reports, expect, options)
    finally:
        for worker in workers:
            await worker.stop(reactor, timeout=60.0)
        await system.stop()
        leftovers = system.bench_env.kill_leftovers()
        if leftovers:
            out["leftover_kernels"] = len(leftovers)
    return out


def summarize(out, reports, expect, options):
    sessions = [s for report in reports for s in report["sessions"]]
    latencies = [x for s in sessions for x in s["latencies"]]
    began = min(r["began"] for r in reports)
    executed = max(r["executed_at"] for r in reports) - began
    delivered_s = max(r["delivered_at"] for r in reports) - began
    received = sum(s["received"] for s in sessions)
    idles = sum(s["idles"] for s in sessions)
    expected = sum(expect[s["kernel"]] for s in sessions)
    out.update({
        "executions": len(latencies),
        "failed": sum(s["failed"] for s in sessions),
        "failure_examples": [f for s in sessions for f in s["failures"]][:5],
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * percentile(latencies, 0.99),
        "latency_max_ms": 1000 * max(latencies),
        "executions_per_s": len(latencies) / executed,
        "deliveries": received,
        "idles": idles,
        "idles_expected": expected,
        "sessions_short": sum(1 for s in sessions if s["idles"] < expect[s["kernel"]]),
        "deliveries_per_s": received / delivered_s,
        "out_of_order": sum(s["out_of_order"] for s in sessions),
        "seq_holes": sum(s["seq_holes"] for s in sessions),
        "server_cpu_ms_per_execution": 1000 * out["server_cpu_s"] / len(latencies),
        "rss_per_kernel": (out["rss_kernels"] - out["rss_empty"]) / options.kernels,
        "rss_per_session": (out["rss_sessions"] - out["rss_kernels"]) / max(1, out["sessions"]),
    })


ROWS = [
    ("executions completed (right result)", lambda r: f"{r['executions'] - r['failed']}/{r['executions']}"),
    ("executions seen ended (idle) by every session on the kernel",
     lambda r: f"{r['idles']}/{r['idles_expected']}"),
    ("sessions that missed an execution's end", lambda r: str(r["sessions_short"])),
    ("iopub messages delivered", lambda r: str(r["deliveries"])),
    ("seqs out of order / missing (webkernel)", lambda r: f"{r['out_of_order']} / {r['seq_holes']}"),
    ("latency p50 (ms)", lambda r: f"{r['latency_p50_ms']:.1f}"),
    ("latency p99 (ms)", lambda r: f"{r['latency_p99_ms']:.1f}"),
    ("latency max (ms)", lambda r: f"{r['latency_max_ms']:.1f}"),
    ("executions/s", lambda r: f"{r['executions_per_s']:.0f}"),
    ("iopub deliveries/s", lambda r: f"{r['deliveries_per_s']:.0f}"),
    ("server CPU per execution (ms)", lambda r: f"{r['server_cpu_ms_per_execution']:.2f}"),
    ("kernels ready after (s)", lambda r: f"{r['kernel_start_s']:.0f}"),
    ("server RSS empty (MiB)", lambda r: f"{r['rss_empty'] / MiB:.0f}"),
    ("server RSS per kernel (MiB)", lambda r: f"{r['rss_per_kernel'] / MiB:.2f}"),
    ("server RSS per session (KiB)", lambda r: f"{r['rss_per_session'] / 1024:.0f}"),
    ("server RSS peak while running (MiB)", lambda r: f"{r['rss_peak'] / MiB:.0f}"),
    ("kernel process RSS, mean (MiB)", lambda r: f"{r['kernel_rss_mean'] / MiB:.0f}"),
]
RATIOS = [("latency p50", "latency_p50_ms"), ("latency p99", "latency_p99_ms"),
          ("iopub deliveries/s", "deliveries_per_s"), ("server CPU per execution",
                                                       "server_cpu_ms_per_execution"),
          ("server RSS per kernel", "rss_per_kernel"), ("server RSS per session", "rss_per_session")]


def render(results, options):
    lines = [f"\n## Load: {options.kernels} kernels, {options.sessions} sessions"
             f" ({options.workers} worker processes), {options.executions} executions each,"
             f" serializer {options.serializer}\n",
             "| | " + " | ".join(r["system"] for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for label, cell in ROWS:
        values = []
        for r in results:
            try:
                values.append(cell(r) if "error" not in r else "-")
            except (KeyError, TypeError, ValueError):
                values.append("-")
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    by_name = {r["system"]: r for r in results if "error" not in r}
    if "webkernel" in by_name and "jupyter" in by_name:
        lines.append("\nwebkernel / Jupyter Server:")
        for label, key in RATIOS:
            theirs = by_name["jupyter"][key]
            if theirs:
                lines.append(f"- {label}: {by_name['webkernel'][key] / theirs:.2f}x")
    for r in results:
        if "error" in r:
            lines.append(f"\n{r['system']} FAILED: {r['error']}")
        elif r["failure_examples"]:
            lines.append(f"\n{r['system']} failures, e.g.: {r['failure_examples']}")
    lines.append(f"\nLogs: {options.log_dir}\n")
    return "\n".join(lines)


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--kernels", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--workers", type=int, default=6, help="client processes")
    parser.add_argument("--executions", type=int, default=20, help="cells each session runs")
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"])
    parser.add_argument("--start-concurrency", type=int, default=4,
                        help="kernels starting at once (default: %(default)s)")
    parser.add_argument("--kernel-timeout", type=float, default=180.0)
    parser.add_argument("--phase-timeout", type=float, default=900.0)
    parser.add_argument("--log-dir")
    parser.add_argument("--json", dest="json_path")
    options = parser.parse_args(argv)
    options.systems = options.systems.split(",")
    if set(options.systems) - set(SYSTEMS):
        parser.error(f"systems are {', '.join(SYSTEMS)}")
    if options.sessions % options.workers:
        parser.error("--sessions must be a multiple of --workers")
    return options


def private_histories(bench_env):
    """Give every kernel an in-memory IPython history.

    The kernels share one IPYTHONDIR; with a hundred of them writing one SQLite
    history file, executions wait for its lock (up to SQLite's 5 s) and IPython
    prints "database is locked": a cost of the shared directory, the same for
    every system, that would hide the servers' own latency.
    """
    profile = os.path.join(bench_env.dirs["ipython"], "profile_default")
    os.makedirs(profile, exist_ok=True)
    with open(os.path.join(profile, "ipython_kernel_config.py"), "w") as config:
        config.write('c.HistoryManager.hist_file = ":memory:"\n')


async def main(reactor, options):
    options.log_dir = os.path.abspath(options.log_dir or tempfile.mkdtemp(prefix="load-bench-"))
    os.makedirs(options.log_dir, exist_ok=True)
    bench_env = BenchEnvironment(options.log_dir)
    private_histories(bench_env)
    results = []
    for name in options.systems:
        kind = Webkernel if name == "webkernel" else Jupyter
        progress(f"{name}: starting")
        try:
            results.append(await bench_system(reactor, kind(reactor, options, bench_env,
                                                            options.log_dir), options))
        except Exception as error:  # noqa: BLE001 - reported, and the other system still runs
            results.append({"system": name, "error": f"{type(error).__name__}: {error}"})
        progress(f"{name}: done")
    sys.stdout.write(render(results, options))
    if options.json_path:
        with open(options.json_path, "w") as out:
            json.dump({"options": {k: v for k, v in vars(options).items()}, "results": results},
                      out, indent=2)
    if any("error" in r or r["failed"] or r["sessions_short"] for r in results
           if r["system"] == "webkernel"):
        raise SystemExit(1)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse_options())))
