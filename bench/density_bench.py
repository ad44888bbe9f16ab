"""
Kernel density: how many idle forked kernels one machine holds, each answering ``1+1``.

Starts one webkernel service with the fork server (``--kernel-factory fork``, and
``--max-kernels`` the number asked for), then starts kernels from one WAMP client,
``--concurrency`` at a time, each ``kernels.start`` then ``eval_cell("1+1")`` (which
must answer ``'2'``), until ``--kernels`` run, a start fails, or the machine's
``MemAvailable`` falls under ``--floor-gib`` (checked before every start: the run
stops starting there and reports how many fit, so it can never take the machine
down). Then, with every kernel idle:

* each kernel is asked ``1+1`` once more (how many still answer);
* the service's own RSS and open descriptors, per kernel (growth since before the
  first kernel);
* RSS, USS and PSS (psutil ``memory_full_info``) of ``--sample`` kernels spread
  over the ones started, their mean; the fork template's own memory;
* ``MemAvailable`` before the service, before the first kernel, at the end, and
  after everything is shut down.

At the end the service is stopped (it shuts its kernels down) and any forked kernel
still running is killed. Prints one JSON object; ``--json FILE`` saves it. Run it with
the project's virtualenv, e.g. (the 1,000-kernel run; see docs/benchmarks.md):

    .venv/bin/python bench/density_bench.py --kernels 1000 --floor-gib 1.5
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time

import psutil
from twisted.internet import defer, task
from twisted.internet.task import deferLater

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kernel_systems import SERVING, BenchEnvironment  # noqa: E402
from processes import LoggedProcess  # noqa: E402
from routers import TWISTD_BIN  # noqa: E402
from wamp_client import close_sessions, connect_session  # noqa: E402

GIB = 2**30
MIB = 2**20


def mem_available():
    """The machine's MemAvailable in bytes (/proc/meminfo)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class Density:
    """One service, one session, and the kernels started so far."""

    def __init__(self, reactor, options, env):
        self.reactor, self.options, self.env = reactor, options, env
        self.kernel_ids = []
        self.asked = 0  # starts begun (some in flight)
        self.stopped_by = None
        self.failure = None
        self.low_memory = False

    async def start_service(self):
        argv = [TWISTD_BIN, "-n", "--pidfile=", "webkernel", "--anonymous",
                "--listen", "tcp:0:interface=127.0.0.1", "--kernel-factory", "fork",
                "--max-kernels", str(self.options.kernels),
                "--kernel-ready-timeout", "120",
                "--kernel-dir", tempfile.mkdtemp(dir=self.env.work_dir)]
        for module in self.options.preload:
            argv += ["--preload", module]
        self.server = LoggedProcess("webkernel", os.path.join(self.env.work_dir, "webkernel.log"))
        self.server.spawn(self.reactor, argv, cwd=self.env.work_dir, env=self.env.env)
        serving = await self.server.wait_for_output(self.reactor, SERVING, 120)
        await self.server.wait_for_output(self.reactor, r"fork template ready, pid (\d+)", 120)
        self.template_pid = int(re.findall(r"fork template ready, pid (\d+)",
                                           self.server._recent)[-1])
        self.session = await connect_session(
            self.reactor, f"ws://127.0.0.1:{serving.group(1)}/ws", "webkernel", timeout=60.0)

    async def start_one(self):
        model = await self.session.call("webkernel.kernels.start", kernel_name="python3")
        self.kernel_ids.append(model["id"])
        result = await self.session.call(f"webkernel.kernel.{model['id']}.eval_cell", "1+1")
        if result != "2":
            raise RuntimeError(f"kernel {model['id']}: 1+1 gave {result!r}")

    async def worker(self):
        floor = self.options.floor_gib * GIB
        while self.stopped_by is None:
            if self.asked >= self.options.kernels:
                return
            if mem_available() < floor:
                self.stopped_by = f"MemAvailable under {self.options.floor_gib} GiB"
                self.low_memory = True
                return
            self.asked += 1
            try:
                await self.start_one()
            except Exception as e:  # noqa: BLE001 - reported: how many fit, and why no more
                self.stopped_by = "a start failed"
                self.failure = f"{type(e).__name__}: {e}"[:500]
                return
            count = len(self.kernel_ids)
            if count % 50 == 0:
                print(f"[density] {count} kernels, MemAvailable "
                      f"{mem_available() / GIB:.2f} GiB", file=sys.stderr, flush=True)

    async def all_answering(self):
        """How many kernels answer ``1+1`` now."""
        answered = 0
        for kernel_id in self.kernel_ids:
            try:
                result = await self.session.call(f"webkernel.kernel.{kernel_id}.eval_cell", "1+1")
                answered += result == "2"
            except Exception:  # noqa: BLE001 - counted as not answering
                pass
        return answered

    def kernel_pids(self):
        """The forked kernels: the fork template's children."""
        try:
            return [p.pid for p in psutil.Process(self.template_pid).children()]
        except psutil.NoSuchProcess:
            return []

    def sample_memory(self, pids):
        step = max(1, len(pids) // max(1, self.options.sample))
        infos = []
        for pid in pids[::step][:self.options.sample]:
            try:
                infos.append(psutil.Process(pid).memory_full_info())
            except psutil.Error:
                continue
        if not infos:
            return {}
        mean = lambda field: round(statistics.mean(getattr(i, field) for i in infos) / MIB, 1)  # noqa: E731
        return {"sampled": len(infos), "rss_mib": mean("rss"), "uss_mib": mean("uss"),
                "pss_mib": mean("pss")}

    async def stop(self):
        """Stop the service (it shuts its kernels down); kill any kernel left; how many were."""
        pids = self.kernel_pids()
        try:
            await close_sessions(self.reactor, [self.session], timeout=30.0)
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        await self.server.stop(self.reactor, timeout=max(120.0, 0.5 * len(pids)))
        left = 0
        for pid in pids:  # whatever the service did not shut down
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    os.kill(pid, 9)
                    left += 1
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
        return left


async def main(reactor, options):
    env = BenchEnvironment(tempfile.mkdtemp(prefix="webkernel-density-bench-"))
    config = os.path.join(env.dirs["ipython"], "profile_default")
    os.makedirs(config, exist_ok=True)
    with open(os.path.join(config, "ipython_kernel_config.py"), "w") as f:
        f.write('c.HistoryManager.hist_file = ":memory:"\n')
    result = {"kernels_asked": options.kernels, "floor_gib": options.floor_gib,
              "preload": options.preload, "concurrency": options.concurrency,
              "mem_available_gib": {"before_service": round(mem_available() / GIB, 2)}}
    if mem_available() < options.floor_gib * GIB:
        raise SystemExit(f"MemAvailable is already under {options.floor_gib} GiB: not starting")
    run = Density(reactor, options, env)
    await run.start_service()
    try:
        service = psutil.Process(run.server.pid)
        rss_before, fds_before = service.memory_info().rss, service.num_fds()
        result["mem_available_gib"]["before_kernels"] = round(mem_available() / GIB, 2)
        started = time.perf_counter()
        await defer.gatherResults([defer.ensureDeferred(run.worker())
                                   for _ in range(options.concurrency)])
        elapsed = time.perf_counter() - started
        reached = len(run.kernel_ids)
        run.stopped_by = run.stopped_by or "all started"
        result.update({"kernels_reached": reached, "stopped_by": run.stopped_by,
                       "failure": run.failure, "seconds": round(elapsed, 1),
                       "kernels_per_second": round(reached / elapsed, 2) if elapsed else None})
        await deferLater(reactor, 2.0, lambda: None)  # let the last starts' buffers settle
        result["answering_at_end"] = await run.all_answering()
        per = max(1, reached)
        result["service"] = {
            "rss_mib": round(service.memory_info().rss / MIB, 1),
            "rss_per_kernel_mib": round((service.memory_info().rss - rss_before) / per / MIB, 2),
            "fds": service.num_fds(),
            "fds_per_kernel": round((service.num_fds() - fds_before) / per, 1),
            "cpu_percent_idle": service.cpu_percent(interval=5.0),
        }
        pids = run.kernel_pids()
        result["kernel_processes"] = len(pids)
        result["kernel_memory"] = run.sample_memory(pids)
        template = psutil.Process(run.template_pid).memory_full_info()
        result["template_mib"] = {"rss": round(template.rss / MIB, 1),
                                  "uss": round(template.uss / MIB, 1)}
        result["mem_available_gib"]["at_end"] = round(mem_available() / GIB, 2)
    finally:
        result["kernels_left_after_stop"] = await run.stop()
        await deferLater(reactor, 2.0, lambda: None)
        result["mem_available_gib"]["after_shutdown"] = round(mem_available() / GIB, 2)
    print(json.dumps(result), flush=True)
    if options.json:
        with open(options.json, "w") as f:
            json.dump(result, f, indent=1)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--kernels", type=int, default=1000, help="kernels to start")
    parser.add_argument("--floor-gib", type=float, default=1.5,
                        help="stop starting when MemAvailable falls under this (GiB)")
    parser.add_argument("--concurrency", type=int, default=4, help="starts in flight at once")
    parser.add_argument("--sample", type=int, default=20, help="kernels whose memory is read")
    parser.add_argument("--preload", action="append", default=[],
                        help="a module the fork template imports (repeatable)")
    parser.add_argument("--json", help="save the result here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse(sys.argv[1:]))))
