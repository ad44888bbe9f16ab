"""
The three systems of the kernel benchmark, started and stopped the same way.

* ``direct``: a ``direct_worker.py`` child (blocking jupyter_client, ZeroMQ straight to
  the kernel): the floor.
* ``webkernel``: ``twistd -n webkernel --anonymous`` from the work tree on a free loopback
  port (read from its log), a kernel started with ``webkernel.kernels.start``.
* ``jupyter`` / ``jupyter-nolimit``: ``jupyter server`` from ``bench/.venv-jupyter``, a
  kernel created with ``POST /api/kernels``; ``jupyter-nolimit`` with the IOPub rate
  limits off.

Every kernel is the same: the ``python3`` kernelspec that :class:`BenchEnvironment`
writes (the project's Python running ``ipykernel_launcher``, as the project
virtualenv's own ``python3`` spec, with the interpreter's absolute path so that Jupyter
Server, which runs from another virtualenv, starts the same interpreter), with the same
environment: Jupyter's and IPython's directories all inside the run's work directory.
"""

import json
import os
import secrets
import signal
import sys
import time

from twisted.internet.task import deferLater

from cpu import descendants, process_cpu_seconds
from kernel_cells import KERNEL_NAME
from kernel_clients import JupyterKernel, WebkernelKernel, jupyter_rest
from processes import LoggedProcess, ProcessFailed, WorkerProcess
from routers import BENCH_DIR, REPO_DIR, TWISTD_BIN, free_port

JUPYTER_BIN = os.path.join(BENCH_DIR, ".venv-jupyter", "bin", "jupyter")
DIRECT_WORKER = os.path.join(BENCH_DIR, "direct_worker.py")
WATCHER_WORKER = os.path.join(BENCH_DIR, "kernel_worker.py")
SERVING = r"webkernel is serving at http://127\.0\.0\.1:(\d+)/"
#: Jupyter Server 2.x names; the ServerApp.* ones are deprecated aliases
NO_RATE_LIMITS = [
    "--ZMQChannelsWebsocketConnection.iopub_msg_rate_limit=0",
    "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0",
]


class BenchEnvironment:
    """The run's work directory: the kernelspec, Jupyter's directories, the environment."""

    def __init__(self, work_dir, kernel_cpus=None):
        self.work_dir = os.path.abspath(work_dir)
        #: CPUs every system's kernel is pinned to (``taskset -c``), or None: the scheduler's choice
        self.kernel_cpus = kernel_cpus
        self.dirs = {name: os.path.join(self.work_dir, name) for name in (
            "jupyter-path", "jupyter-config", "jupyter-data", "jupyter-runtime", "ipython",
            "jupyter-root", "webkernel-kernels")}
        for path in self.dirs.values():
            os.makedirs(path, mode=0o700, exist_ok=True)
        self.kernelspec = self._write_kernelspec()
        self.env = dict(os.environ)
        self.env.update({
            "JUPYTER_PATH": self.dirs["jupyter-path"],
            "JUPYTER_CONFIG_DIR": self.dirs["jupyter-config"],
            "JUPYTER_DATA_DIR": self.dirs["jupyter-data"],
            "JUPYTER_RUNTIME_DIR": self.dirs["jupyter-runtime"],
            "IPYTHONDIR": self.dirs["ipython"],
            # webkernel sets this for its kernels; set it for every system's kernel alike
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            # twistd imports webkernel from this work tree, not a stale install
            "PYTHONPATH": os.pathsep.join(filter(None, [REPO_DIR, os.environ.get("PYTHONPATH")])),
        })
        self.env.pop("JUPYTER_TOKEN", None)

    def _write_kernelspec(self):
        installed = os.path.join(sys.prefix, "share", "jupyter", "kernels", KERNEL_NAME,
                                 "kernel.json")
        try:
            with open(installed) as source:
                spec = json.load(source)
        except OSError:
            spec = {"display_name": "Python 3 (ipykernel)", "language": "python",
                    "metadata": {"debugger": True}}
        pin = ["taskset", "-c", self.kernel_cpus] if self.kernel_cpus else []
        spec["argv"] = [*pin, sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec_dir = os.path.join(self.dirs["jupyter-path"], "kernels", KERNEL_NAME)
        os.makedirs(spec_dir, exist_ok=True)
        path = os.path.join(spec_dir, "kernel.json")
        with open(path, "w") as out:
            json.dump(spec, out, indent=1)
        return spec

    def leftover_kernels(self):
        """Pids of kernel processes still running with a connection file in the work dir."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    argv = cmdline.read().split(b"\0")
            except OSError:
                continue
            if b"ipykernel_launcher" in argv and any(
                    arg.startswith(self.work_dir.encode()) for arg in argv):
                found.append(int(entry))
        return found

    def kill_leftovers(self):
        pids = self.leftover_kernels()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids


def jupyter_server_argv(port, token, root_dir):
    """Jupyter Server on 127.0.0.1:*port* with *token*, serving *root_dir* (as root too)."""
    argv = [JUPYTER_BIN, "server", "--no-browser", f"--IdentityProvider.token={token}",
            f"--port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root_dir}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def kernel_pid_under(pid):
    """The pid of the ipykernel process below process ``pid`` (None if there is none)."""
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"ipykernel_launcher" in cmdline.read():
                    return child
        except OSError:
            continue
    return None


class System:
    """A system under test: a kernel and a client for it, and (but for direct) a server."""

    name = None
    fanout = True
    server = None        # the LoggedProcess of the server
    kernel_pid = None

    def __init__(self, bench_env, options, log_dir):
        self.bench_env = bench_env
        self.options = options
        self.log_dir = log_dir

    def server_cpu(self):
        """CPU seconds of the server process alone (its kernel is counted apart)."""
        return process_cpu_seconds(self.server.pid) if self.server else None

    def kernel_cpu(self):
        return process_cpu_seconds(self.kernel_pid) if self.kernel_pid else None

    def log_path(self, what):
        return os.path.join(self.log_dir, f"{self.name}-{what}.log")

    async def latency(self, reactor, runs):
        return [await self.client.run_latency() for _ in range(runs)]

    async def stream(self, reactor, lines):
        """The stream cell: {lines_seconds, done_seconds, received, missing, disorder, client_cpu}."""
        cpu = time.process_time()
        idles_lost = getattr(self.client, "idles_lost", 0)
        counter, start, done_at = await self.client.run_stream(lines)
        return {
            "lines_seconds": counter.complete_at - start if counter.complete else None,
            "last_line_seconds": (counter.last_line_at - start
                                  if counter.last_line_at is not None else None),
            "done_seconds": done_at - start,
            "received": counter.distinct, "missing": counter.missing,
            "disorder": counter.disorder, "client_cpu": time.process_time() - cpu,
            "idle_lost": getattr(self.client, "idles_lost", 0) > idles_lost,
        }

    async def run_cell(self, code):
        await self.client.run_cell(code)

    def start_watchers(self, reactor, index, watchers, lines):
        argv = [sys.executable, WATCHER_WORKER, *self.watcher_args(),
                "--watchers", str(watchers), "--lines", str(lines)]
        worker = WorkerProcess(f"{self.name}-watchers-{index}", self.log_path(f"watchers-{index}"))
        return worker.spawn(reactor, argv, env=self.bench_env.env)


class DirectSystem(System):
    name = "direct"
    fanout = False

    async def start(self, reactor):
        self.worker = WorkerProcess(self.name, self.log_path("worker"))
        self.worker.spawn(reactor, [sys.executable, DIRECT_WORKER], env=self.bench_env.env)
        ready = await self.worker.expect(reactor, "ready", self.options.start_timeout)
        self.kernel_pid = ready["kernel_pid"]

    async def latency(self, reactor, runs):
        self.worker.command(command="latency", runs=runs)
        answer = await self.worker.expect(reactor, "latency", self.options.phase_timeout)
        return answer["seconds"]

    async def stream(self, reactor, lines):
        self.worker.command(command="stream", lines=lines)
        answer = await self.worker.expect(reactor, "stream", self.options.phase_timeout)
        return {key: answer[key] for key in
                ("lines_seconds", "done_seconds", "received", "missing", "disorder", "client_cpu")}

    async def stop(self, reactor):
        await self.worker.stop(reactor, timeout=30.0)

    @property
    def log_paths(self):
        return [self.worker.log_path]


class WebkernelSystem(System):
    name = "webkernel"
    started = 0  # servers started in this run (names the --cprofile files)

    async def start(self, reactor):
        argv = [TWISTD_BIN, "-n", "--pidfile=", *self.profiler_args(), "webkernel", "--anonymous",
                "--listen", "tcp:0:interface=127.0.0.1",
                "--kernel-dir", self.bench_env.dirs["webkernel-kernels"]]
        self.server = LoggedProcess(self.name, self.log_path("server"))
        self.server.spawn(reactor, argv, cwd=self.bench_env.work_dir, env=self.bench_env.env)
        self.client = None
        serving = await self.server.wait_for_output(reactor, SERVING, self.options.start_timeout)
        self.url = f"ws://127.0.0.1:{serving.group(1)}/ws"
        self.client = await WebkernelKernel.start(reactor, self.url, self.options.serializer,
                                                  timeout=self.options.start_timeout)
        self.kernel_pid = kernel_pid_under(self.server.pid)

    def profiler_args(self):
        """With ``--cprofile``: twistd's own cProfile, its stats saved when the server stops."""
        if not getattr(self.options, "cprofile", False):
            return []
        WebkernelSystem.started += 1
        path = os.path.join(self.log_dir, f"cprofile-webkernel-{WebkernelSystem.started}.pstats")
        return [f"--profile={path}", "--profiler=cprofile", "--savestats"]

    def watcher_args(self):
        return ["webkernel", "--url", self.url, "--kernel", self.client.id,
                "--serializer", self.options.serializer]

    async def stop(self, reactor):
        try:
            if self.client is not None:
                await self.client.close(reactor)
        finally:
            await self.server.stop(reactor, timeout=30.0)

    @property
    def log_paths(self):
        return [self.server.log_path]


class JupyterSystem(System):
    """Jupyter Server with its default settings (``limits=True``) or its IOPub rate limits off."""

    def __init__(self, bench_env, options, log_dir, limits=True):
        super().__init__(bench_env, options, log_dir)
        self.limits = limits
        self.name = "jupyter" if limits else "jupyter-nolimit"

    async def start_server(self, reactor):
        """Start Jupyter Server on a free loopback port; return once it answers."""
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = jupyter_server_argv(self.port, self.token, self.bench_env.dirs["jupyter-root"])
        if not self.limits:
            argv += NO_RATE_LIMITS
        self.server = LoggedProcess(self.name, self.log_path("server"))
        self.server.spawn(reactor, argv, cwd=self.bench_env.work_dir, env=self.bench_env.env)
        await self._wait_ready(reactor)

    async def start(self, reactor):
        self.client = None
        self.kernel_id = None
        await self.start_server(reactor)
        self.kernel_id = await JupyterKernel.create(reactor, self.base_url, self.token)
        self.client = await JupyterKernel(self.base_url, self.token, self.kernel_id).connect(
            reactor, timeout=self.options.start_timeout)
        self.kernel_pid = kernel_pid_under(self.server.pid)

    async def _wait_ready(self, reactor):
        deadline = time.monotonic() + self.options.start_timeout
        while self.server.running and time.monotonic() < deadline:
            try:
                await jupyter_rest(reactor, "GET", f"{self.base_url}/api/status", self.token,
                                   timeout=2.0)
                return
            except Exception:
                await deferLater(reactor, 0.2, lambda: None)
        why = "exited" if not self.server.running else "did not answer /api/status"
        raise ProcessFailed(f"{self.name} {why}:\n{self.server.log_tail()}")

    def watcher_args(self):
        return ["jupyter", "--url", self.base_url, "--kernel", self.kernel_id,
                "--token", self.token]

    async def stop(self, reactor):
        try:
            if self.client is not None:
                await self.client.close(reactor)
            if self.kernel_id is not None and self.server.running:
                await JupyterKernel.delete(reactor, self.base_url, self.token, self.kernel_id)
        finally:
            await self.server.stop(reactor, timeout=30.0)

    @property
    def log_paths(self):
        return [self.server.log_path]


def make_system(name, bench_env, options, log_dir):
    if name == "direct":
        return DirectSystem(bench_env, options, log_dir)
    if name == "webkernel":
        return WebkernelSystem(bench_env, options, log_dir)
    if name in ("jupyter", "jupyter-nolimit"):
        return JupyterSystem(bench_env, options, log_dir, limits=name == "jupyter")
    raise ValueError(name)


SYSTEMS = ("direct", "webkernel", "jupyter", "jupyter-nolimit")
