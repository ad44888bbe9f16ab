"""
A worker process of the load benchmark (``load_bench.py``): many client sessions at once.

Each session belongs to one kernel and, before anything runs, starts receiving
every iopub message of that kernel: on webkernel a WAMP session with a prefix
subscription on ``webkernel.kernel.<id>.iopub``; on Jupyter Server one
``/api/kernels/<id>/channels`` WebSocket (which receives every iopub message of its
kernel). On ``go`` every session runs ``--executions`` cells one after another
(``print(n); n * 2``), timing each from request to final result, checking the
result, and counting the iopub messages it receives.

Talks JSON lines with the driver (``processes.WorkerProcess``): ``ready`` once every
session is open; on the command ``go``, runs and answers ``done`` with the
latencies and tallies; closing stdin makes it close its sessions and exit.

    python load_worker.py webkernel --url ws://… --kernels ID,ID --sessions 50 --offset 0
"""

import argparse
import time

import broker  # noqa: F401  (selects Twisted for txaio)
from twisted.internet import defer, stdio, task

from worker_channel import Commands, emit
from kernel_cells import WEBKERNEL_REALM
from kernel_clients import JupyterKernel
from wamp_client import close_sessions, connect_session


def cell(n):
    return f"print({n}); {n} * 2"


def check(n, status, outputs):
    """None if the outputs of ``cell(n)`` are right, else what is wrong.

    The printed line may come in more than one stream message, and IPython may
    print warnings of its own beside it (100 kernels share one history database:
    "database is locked"), so the line is looked for among all stdout lines.
    """
    if status != "ok":
        return f"status {status!r}"
    stdout = "".join(content.get("text", "") for msg_type, content in outputs
                     if msg_type == "stream" and content.get("name") == "stdout")
    results = [content.get("data", {}).get("text/plain") for msg_type, content in outputs
               if msg_type == "execute_result"]
    if str(n) not in stdout.splitlines() or results != [str(n * 2)]:
        return f"cell {n}: stdout {stdout[-200:]!r}, results {results!r}"
    return None


class Tally:
    """What one session received and how its executions went."""

    def __init__(self, kernel_id):
        self.kernel_id = kernel_id
        self.received = 0          # iopub messages delivered to this session
        self.idles = 0             # of which ``status: idle``: one per execution on the kernel
        self.seqs = []             # webkernel only: their seq, in arrival order
        self.latencies = []
        self.failures = []
        self.arrived = None        # a Deferred fired when ``received`` reaches ``expect``
        self.expect = None

    def delivered(self, msg_type, content, seq=None):
        self.received += 1
        if msg_type == "status" and content.get("execution_state") == "idle":
            self.idles += 1
        if seq is not None:
            self.seqs.append(seq)
        if self.arrived is not None and self.idles >= self.expect:
            arrived, self.arrived = self.arrived, None
            arrived.callback(None)

    def wait_for(self, reactor, expect, timeout):
        self.expect = expect
        if self.idles >= expect:
            return defer.succeed(None)
        self.arrived = defer.Deferred()
        return self.arrived.addTimeout(timeout, reactor).addErrback(lambda _: None)

    def summary(self):
        out_of_order = sum(1 for a, b in zip(self.seqs, self.seqs[1:]) if b <= a)
        holes = 0
        if self.seqs:
            holes = (max(self.seqs) - min(self.seqs) + 1) - len(set(self.seqs))
        return {"kernel": self.kernel_id, "received": self.received, "idles": self.idles,
                "latencies": self.latencies,
                "failures": self.failures[:5], "failed": len(self.failures),
                "out_of_order": out_of_order, "seq_holes": holes}


class WebkernelSession:
    batch = 10
    def __init__(self, session, kernel_id):
        self.session, self.tally = session, Tally(kernel_id)

    @classmethod
    async def open(cls, reactor, options, kernel_id):
        session = await connect_session(reactor, options.url, WEBKERNEL_REALM, options.serializer,
                                        timeout=60.0)
        self = cls(session, kernel_id)
        await session.subscribe(lambda *a, **output: self.tally.delivered(
            output["msg_type"], output["content"], output["seq"]),
                                f"webkernel.kernel.{kernel_id}.iopub",
                                options=_prefix())
        return self

    async def execute(self, n):
        result = await self.session.call(f"webkernel.kernel.{self.tally.kernel_id}.execute",
                                         code=cell(n))
        result = result.kwresults
        return check(n, result["status"],
                     [(o["msg_type"], o["content"]) for o in result["outputs"]])

    async def close(self, reactor):
        await close_sessions(reactor, [self.session])


def _prefix():
    from autobahn.wamp.types import SubscribeOptions
    return SubscribeOptions(match="prefix")


class JupyterSession:
    batch = 1
    def __init__(self, kernel):
        self.kernel, self.tally = kernel, Tally(kernel.id)
        kernel.on_iopub = lambda msg: self.tally.delivered(msg["header"]["msg_type"], msg["content"])

    @classmethod
    async def open(cls, reactor, options, kernel_id):
        kernel = JupyterKernel(options.url, options.token, kernel_id)
        self = cls(kernel)
        await kernel.connect(reactor, timeout=120.0)
        return self

    async def execute(self, n):
        reply, outputs = await self.kernel.execute(cell(n))
        return check(n, reply["content"].get("status"), outputs)

    async def close(self, reactor):
        await self.kernel.close(reactor)


async def run_session(reactor, client, first, executions):
    for i in range(executions):
        n = first + i
        start = time.perf_counter()
        try:
            problem = await client.execute(n)
        except Exception as error:  # noqa: BLE001 - every failure is counted and reported
            problem = f"{type(error).__name__}: {error}"
        client.tally.latencies.append(time.perf_counter() - start)
        if problem is not None:
            client.tally.failures.append(problem)




async def main(reactor, options):
    commands = Commands()
    stdio.StandardIO(commands, reactor=reactor)
    kind = WebkernelSession if options.system == "webkernel" else JupyterSession
    kernels = options.kernels.split(",")
    assigned = [kernels[(options.offset + i) % len(kernels)] for i in range(options.sessions)]
    clients = []
    # ten handshakes at a time; Jupyter Server one at a time (each opens four ZeroMQ
    # sockets and nudges the kernel: ten at once time out under load)
    batch = kind.batch
    for start in range(0, len(assigned), batch):
        clients += await defer.gatherResults(
            [defer.ensureDeferred(kind.open(reactor, options, kernel_id))
             for kernel_id in assigned[start:start + batch]], consumeErrors=True)
    emit(event="ready", sessions=len(clients))
    command = await commands.lines.get()
    assert command["command"] == "go", command
    for client in clients:   # what connecting caused (kernel_info's status messages) is not counted
        client.tally.received, client.tally.idles, client.tally.seqs = 0, 0, []
    began = time.monotonic()
    await defer.gatherResults([
        defer.ensureDeferred(run_session(reactor, client, (options.offset + i) * 100000,
                                         options.executions))
        for i, client in enumerate(clients)], consumeErrors=True)
    executed_at = time.monotonic()
    # every session should see the idle of every execution on its kernel
    for client in clients:
        await client.tally.wait_for(reactor, command["expect"][client.tally.kernel_id], 30.0)
    emit(event="done", began=began, executed_at=executed_at, delivered_at=time.monotonic(),
         sessions=[client.tally.summary() for client in clients])
    await commands.lost
    for start in range(0, len(clients), 25):
        await defer.gatherResults([defer.ensureDeferred(c.close(reactor))
                                   for c in clients[start:start + 25]], consumeErrors=True)


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=("webkernel", "jupyter"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--kernels", required=True, help="comma-separated kernel ids")
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0,
                        help="index of this worker's first session among all sessions")
    parser.add_argument("--executions", type=int, required=True)
    parser.add_argument("--serializer", default="json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse_options())))
