"""
Kernel start-up and density: start -> first result, and memory per idle kernel.

For each system: webkernel with the spawn launcher (``spawn``), with a warm pool
(``pool``), with the fork server (``fork``), the fork server with ``--preload numpy``
(``fork-numpy``), fork server and pool together (``fork-pool``), Jupyter Server
(``jupyter``, from ``bench/.venv-jupyter``), and Jupyter Kernel Gateway (from
``bench/.venv-kg``) without (``kernel-gateway``) and with prespawned kernels
(``kernel-gateway-prespawn``), each a fresh server, one after another
(``bench/run_start_bench.sh`` makes both side virtualenvs, then runs this):

* **latency**: ``--runs`` times, from a client already connected: start a kernel and
  run ``1+1`` until its result is in hand (webkernel: ``kernels.start`` then
  ``eval_cell``; Jupyter Server: ``POST /api/kernels``, the kernel WebSocket, an
  ``execute_request``); the kernel is shut down after each sample (not timed). A
  pooled system waits until its pool is full again before the next sample.
* **burst**: ``--burst`` starts at once, each followed by ``1+1``; the time from the
  burst's start to each result.
* **memory**: ``--idle`` kernels started and left idle after ``1+1``; per kernel
  process RSS, USS and PSS (psutil ``memory_full_info``), and the server's RSS
  growth per kernel. For the fork server the template's own memory is reported too.

Kernel Gateway's prespawn (``--KernelGatewayApp.prespawn_count=N``) starts N kernels
when the gateway starts and never again: ``POST /api/kernels`` always starts a new
kernel, and the prespawned ones are only *listed* (``GET /api/kernels``, with
``--JupyterWebsocketPersonality.list_kernels=True``). So a client uses one the only way
it can: list the kernels, take one it has not used yet, open its WebSocket, run
``1+1``; that is what is timed. As nothing refills it, each phase (latency, burst,
memory) gets a fresh gateway with as many prespawned kernels as the phase takes.

Prints one JSON object per system and a Markdown table; ``--json FILE`` saves them.
Run it with the project's virtualenv: ``.venv/bin/python bench/start_bench.py``.
"""

import argparse
import asyncio
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

from kernel_clients import JupyterKernel, jupyter_rest  # noqa: E402
from kernel_systems import SERVING, BenchEnvironment, jupyter_server_argv  # noqa: E402
from processes import LoggedProcess  # noqa: E402
from routers import BENCH_DIR, TWISTD_BIN, free_port  # noqa: E402
from wamp_client import close_sessions, connect_session  # noqa: E402

SYSTEMS = {
    "spawn": [],
    "pool": ["--pool", "python3={pool}"],
    "fork": ["--kernel-factory", "fork"],
    "fork-numpy": ["--kernel-factory", "fork", "--preload", "numpy"],
    "fork-pool": ["--kernel-factory", "fork", "--pool", "python3={pool}"],
    "jupyter": None,
    "kernel-gateway": None,
    "kernel-gateway-prespawn": None,
}
KG_BIN = os.path.join(BENCH_DIR, ".venv-kg", "bin", "jupyter-kernelgateway")
PID_CODE = "import os; os.getpid()"


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Webkernel:
    """A webkernel service with the options of one system, and one WAMP session to it."""

    def __init__(self, name, env, options, log_dir):
        self.name, self.env, self.options, self.log_dir = name, env, options, log_dir
        self.pool = options.pool if "pool" in name else 0
        self.template_seen = False  # the fork template said it is ready (logged once)

    async def start(self, reactor):
        extra = [a.format(pool=self.pool) for a in SYSTEMS[self.name]]
        argv = [TWISTD_BIN, "-n", "--pidfile=", "webkernel", "--anonymous",
                "--listen", "tcp:0:interface=127.0.0.1", "--max-kernels", "200",
                "--kernel-dir", tempfile.mkdtemp(dir=self.env.work_dir), *extra]
        self.server = LoggedProcess(self.name, os.path.join(self.log_dir, f"{self.name}.log"))
        self.server.spawn(reactor, argv, cwd=self.env.work_dir, env=self.env.env)
        serving = await self.server.wait_for_output(reactor, SERVING, 60)
        self.session = await connect_session(reactor, f"ws://127.0.0.1:{serving.group(1)}/ws",
                                             "webkernel")
        await self.settled(reactor)

    async def prepare(self, reactor, count):
        """Nothing to do: a pool refills itself before each sample (see settled)."""

    async def settled(self, reactor, timeout=300):
        """Wait until the pool is full (and the fork template ready), as the log says."""
        wanted = []
        if self.pool:
            wanted.append(f"{self.pool} in the pool")
        if "fork" in self.name and not self.template_seen:
            wanted.append("fork template ready")  # logged once: the recent log forgets it
        deadline = time.monotonic() + timeout
        for text in wanted:
            while not self._full(text):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: {text!r} never logged")
                await deferLater(reactor, 0.02, lambda: None)

    def _full(self, text):
        if "in the pool" not in text:
            seen = text in self.server._recent
            if seen and text == "fork template ready":
                self.template_seen = True
            return seen
        counts = re.findall(r"(\d+) in the pool", self.server._recent)
        return bool(counts) and int(counts[-1]) >= self.pool

    async def start_and_run(self):
        model = await self.session.call("webkernel.kernels.start", kernel_name="python3")
        result = await self.session.call(f"webkernel.kernel.{model['id']}.eval_cell", "1+1")
        assert result == "2", result
        return model["id"]

    async def pid(self, kernel_id):
        return int(await self.session.call(f"webkernel.kernel.{kernel_id}.eval_cell", PID_CODE))

    async def shutdown(self, kernel_id):
        await self.session.call(f"webkernel.kernel.{kernel_id}.shutdown")

    def extra_memory(self):
        found = re.findall(r"fork template ready, pid (\d+)", self.server._recent)
        if not found:
            return {}
        info = psutil.Process(int(found[-1])).memory_full_info()
        return {"template_rss_mib": info.rss / 2**20, "template_uss_mib": info.uss / 2**20}

    async def stop(self, reactor):
        await close_sessions(reactor, [self.session])
        await self.server.stop(reactor, timeout=60.0)


class Jupyter:
    """Jupyter Server from bench/.venv-jupyter; each kernel over its own WebSocket."""

    name = "jupyter"
    pool = 0

    def __init__(self, name, env, options, log_dir):
        self.env, self.log_dir = env, log_dir
        self.clients = {}

    async def start(self, reactor):
        self.reactor = reactor
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = jupyter_server_argv(self.port, self.token, self.env.dirs["jupyter-root"])
        self.server = LoggedProcess(self.name, os.path.join(self.log_dir, "jupyter.log"))
        self.server.spawn(reactor, argv, cwd=self.env.work_dir, env=self.env.env)
        for _ in range(600):
            try:
                await jupyter_rest(reactor, "GET", f"{self.base_url}/api/status", self.token,
                                   timeout=2.0)
                return
            except Exception:
                await deferLater(reactor, 0.1, lambda: None)
        raise RuntimeError("jupyter server did not start")

    async def prepare(self, reactor, count):
        return

    async def settled(self, reactor):
        return

    async def start_and_run(self):
        kernel_id = await JupyterKernel.create(self.reactor, self.base_url, self.token)
        return await self.run_on(kernel_id)

    async def run_on(self, kernel_id):
        """Open *kernel_id*'s WebSocket, run ``1+1`` and keep the client; the id."""
        client = await JupyterKernel(self.base_url, self.token, kernel_id).connect(
            self.reactor, timeout=120)
        reply, outputs = await client.execute("1+1")
        assert reply["content"]["status"] == "ok", reply
        self.clients[kernel_id] = client
        return kernel_id

    async def pid(self, kernel_id):
        _, outputs = await self.clients[kernel_id].execute(PID_CODE)
        return int(next(c["data"]["text/plain"] for t, c in outputs if t == "execute_result"))

    async def shutdown(self, kernel_id):
        await self.clients.pop(kernel_id).close(self.reactor)
        await JupyterKernel.delete(self.reactor, self.base_url, self.token, kernel_id)

    def extra_memory(self):
        return {}

    async def stop(self, reactor):
        for kernel_id in list(self.clients):
            await self.shutdown(kernel_id)
        await self.server.stop(reactor, timeout=60.0)


class KernelGateway(Jupyter):
    """Jupyter Kernel Gateway from bench/.venv-kg; ``-prespawn``: N kernels started with it."""

    def __init__(self, name, env, options, log_dir):
        super().__init__(name, env, options, log_dir)
        self.name = name
        self.prespawned = name.endswith("-prespawn")
        self.pool = 0  # prespawned: as many as each phase takes (see prepare)
        self.used = set()        # prespawned kernels this client has taken already
        self.from_prespawn = 0   # samples that got a prespawned kernel
        self.fresh = 0           # samples that found none left and had to POST
        self.runs = 0

    async def start(self, reactor, prespawn=0):
        self.reactor = reactor
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = [KG_BIN, "--KernelGatewayApp.ip=127.0.0.1", f"--KernelGatewayApp.port={self.port}",
                f"--KernelGatewayApp.auth_token={self.token}",
                "--KernelGatewayApp.port_retries=0",
                f"--KernelGatewayApp.prespawn_count={prespawn}",
                "--JupyterWebsocketPersonality.list_kernels=True"]
        self.runs += 1
        log = os.path.join(self.log_dir, f"{self.name}-{self.runs}.log")
        self.server = LoggedProcess(self.name, log)
        self.server.spawn(reactor, argv, cwd=self.env.work_dir, env=self.env.env)
        await self._answering(reactor, prespawn)
        self.used = set()

    async def _answering(self, reactor, prespawn, timeout=300):
        """Wait until the gateway lists its *prespawn* kernels, then prove each ready.

        A prespawned kernel stays ``starting`` until something talks to it, so each is
        proven as webkernel's pool proves its kernels: a ``kernel_info`` over its
        WebSocket (then closed), before anything is timed.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                kernels = await jupyter_rest(reactor, "GET", f"{self.base_url}/api/kernels",
                                             self.token, timeout=5.0)
                if len(kernels) >= prespawn:
                    break
            except Exception:
                pass  # not listening yet, or listing a kernel still being created
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: gateway not ready with {prespawn} kernels")
            await deferLater(reactor, 0.1, lambda: None)
        for model in kernels:
            client = await JupyterKernel(self.base_url, self.token, model["id"]).connect(
                reactor, timeout=120)
            await client.close(reactor)

    async def prepare(self, reactor, count):
        """With prespawn: a fresh gateway with *count* prespawned kernels (nothing refills it)."""
        if self.prespawned:
            await self.stop(reactor)
            await self.start(reactor, prespawn=count)

    async def start_and_run(self):
        if not self.prespawned:
            return await super().start_and_run()
        kernels = await jupyter_rest(self.reactor, "GET", f"{self.base_url}/api/kernels",
                                     self.token, timeout=10.0)
        unused = [k["id"] for k in kernels if k["id"] not in self.used]
        if unused:
            kernel_id = unused[0]
            self.from_prespawn += 1
        else:
            kernel_id = await JupyterKernel.create(self.reactor, self.base_url, self.token)
            self.fresh += 1
        self.used.add(kernel_id)
        return await self.run_on(kernel_id)

    def counts(self):
        """How many timed starts got a prespawned kernel, and how many had to POST."""
        return {"prespawned_used": self.from_prespawn, "posted": self.fresh}


async def latency(reactor, system, runs):
    samples = []
    for _ in range(runs):
        await system.settled(reactor)
        start = time.perf_counter()
        kernel_id = await system.start_and_run()
        samples.append(time.perf_counter() - start)
        await system.shutdown(kernel_id)
    return samples


async def burst(reactor, system, count):
    await system.settled(reactor)
    start = time.perf_counter()

    async def one():
        kernel_id = await system.start_and_run()
        return time.perf_counter() - start, kernel_id

    done = await defer.gatherResults([defer.ensureDeferred(one()) for _ in range(count)])
    for _, kernel_id in done:
        await system.shutdown(kernel_id)
    return [seconds for seconds, _ in done]


async def memory(reactor, system, count):
    await system.settled(reactor)
    server = psutil.Process(system.server.pid)
    before = server.memory_info().rss
    ids = [await system.start_and_run() for _ in range(count)]
    await system.settled(reactor)
    pids = [await system.pid(kernel_id) for kernel_id in ids]
    infos = [psutil.Process(pid).memory_full_info() for pid in pids]
    found = {
        "rss_mib": statistics.mean(i.rss for i in infos) / 2**20,
        "uss_mib": statistics.mean(i.uss for i in infos) / 2**20,
        "pss_mib": statistics.mean(i.pss for i in infos) / 2**20,
        "server_rss_per_kernel_mib": (server.memory_info().rss - before) / count / 2**20,
        **system.extra_memory(),
    }
    for kernel_id in ids:
        await system.shutdown(kernel_id)
    return found


async def bench(reactor, name, options, env, log_dir):
    kind = {"jupyter": Jupyter, "kernel-gateway": KernelGateway,
            "kernel-gateway-prespawn": KernelGateway}.get(name, Webkernel)
    system = kind(name, env, options, log_dir)
    await system.start(reactor)
    try:
        await system.prepare(reactor, 2 + options.runs)
        await latency(reactor, system, 2)  # warm-up: imports, caches, the first connection
        samples = await latency(reactor, system, options.runs)
        await system.prepare(reactor, options.burst)
        bursts = await burst(reactor, system, options.burst)
        # the memory phase POSTs its kernels (the same processes a prespawn starts), so the
        # gateway's own growth per kernel is seen
        used = await memory(reactor, system, options.idle)
        counts = system.counts() if isinstance(system, KernelGateway) else {}
    finally:
        await system.stop(reactor)
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    return {"system": name, "pool": system.pool,
            "latency_ms": {"p50": ms(percentile(samples, 0.5)), "p90": ms(percentile(samples, 0.9)),
                           "runs": len(samples)},
            "burst_ms": {"count": options.burst, "p50": ms(percentile(bursts, 0.5)),
                         "p90": ms(percentile(bursts, 0.9)), "max": ms(max(bursts))},
            "memory_mib": {k: round(v, 1) for k, v in used.items()}, "idle_kernels": options.idle,
            **counts}


def table(results):
    rows = ["| system | start→1+1 p50 / p90 (ms) | burst of N: p50 / p90 / max (ms) | "
            "per idle kernel RSS / USS / PSS (MiB) | server RSS per kernel (MiB) |",
            "|---|---|---|---|---|"]
    for r in results:
        m = r["memory_mib"]
        name = r["system"] + (f" ({r['pool']})" if r["pool"] else "")
        rows.append(f"| {name} | {r['latency_ms']['p50']} / {r['latency_ms']['p90']} | "
                    f"{r['burst_ms']['count']}: {r['burst_ms']['p50']} / {r['burst_ms']['p90']} / "
                    f"{r['burst_ms']['max']} | {m['rss_mib']} / {m['uss_mib']} / {m['pss_mib']} | "
                    f"{m['server_rss_per_kernel_mib']} |")
    return "\n".join(rows)


async def main(reactor, options):
    work_dir = tempfile.mkdtemp(prefix="webkernel-start-bench-")
    env = BenchEnvironment(work_dir)
    # as in the load benchmark: dozens of kernels of one account must not queue on one SQLite file
    config = os.path.join(env.dirs["ipython"], "profile_default")
    os.makedirs(config, exist_ok=True)
    with open(os.path.join(config, "ipython_kernel_config.py"), "w") as f:
        f.write('c.HistoryManager.hist_file = ":memory:"\n')
    results = []
    for name in options.systems.split(","):
        result = await bench(reactor, name, options, env, work_dir)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(table(results))
    if options.json:
        with open(options.json, "w") as f:
            json.dump(results, f, indent=1)
    env.kill_leftovers()


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--runs", type=int, default=20, help="latency samples per system")
    parser.add_argument("--burst", type=int, default=30, help="starts at once in the burst")
    parser.add_argument("--idle", type=int, default=10, help="idle kernels for the memory figures")
    parser.add_argument("--pool", type=int, default=30, help="pool size of the pooled systems")
    parser.add_argument("--json", help="save the results here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse(sys.argv[1:]))))
