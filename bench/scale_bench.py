"""Scale-out bench: executions/s and deliveries/s with 1, 2 and 4 kernel hosts behind one Crossbar.io.

For each host count N it starts Crossbar.io (the scale-out tests' node:
tests/crossbar.py, config from bench/routers.py), N ``twistd webkernel
--router`` hosts, and two kernels per host (placed by the cluster's
``kernels.start``), then measures, each for ``--seconds``:

* **executions/s**: one client session per kernel calls ``execute("x = 1")``
  in a closed loop (the next call when the last returns);
* **deliveries/s**: every kernel prints 200 lines per cell in a closed loop
  while ``--subscribers`` sessions each hold a prefix subscription on
  ``webkernel.kernel.``: stream events received by all subscribers per second.

Everything runs on this machine, so hosts, kernels, Crossbar.io and the
clients share its cores: the curve shows where this machine saturates, and
Crossbar.io's CPU share says how close the router is. Usage:
``bench/run_scale_bench.sh [--hosts 1 2 4] [--seconds 10]``.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402

from tests import crossbar  # noqa: E402
from tests.twisted_wamp import joined, leave  # noqa: E402

CALL = 120


def cpu_seconds(pid):
    """User+system CPU seconds of *pid* and its children that were waited for (from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu(root_pid):
    """CPU seconds of *root_pid* and every descendant (Crossbar.io's controller and workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu_seconds(pid)
        todo.extend(children.get(pid, []))
    return total


@defer.inlineCallbacks
def closed_loop(reactor, session, uri, args, until):
    count = 0
    while time.monotonic() < until:
        yield session.call(uri, *args).addTimeout(CALL, reactor)
        count += 1
    return count


@defer.inlineCallbacks
def measure(reactor, hosts, seconds, subscribers):
    work = tempfile.mkdtemp(prefix="webkernel-scale-")
    node = crossbar.CrossbarNode(work).start()
    running = [node]
    try:
        for _ in range(hosts):
            running.append(crossbar.kernel_host(node, tempfile.mkdtemp(dir=work),
                                                "--max-kernels", "4"))
        client = yield joined(node, realm=crossbar.REALM)
        kernels = []
        for _ in range(2 * hosts):
            model = yield client.call("webkernel.kernels.start").addTimeout(CALL, reactor)
            kernels.append(model["id"])
        sessions = yield defer.gatherResults([joined(node, realm=crossbar.REALM)
                                              for _ in kernels])
        for kernel_id, session in zip(kernels, sessions):  # warm each kernel up
            yield session.call(f"webkernel.kernel.{kernel_id}.execute", "x = 1")

        router_cpu = tree_cpu(node.process.process.pid)
        until = time.monotonic() + seconds
        counts = yield defer.gatherResults([
            closed_loop(reactor, s, f"webkernel.kernel.{k}.execute", ("x = 1",), until)
            for k, s in zip(kernels, sessions)])
        executions = sum(counts) / seconds
        exec_router = tree_cpu(node.process.process.pid) - router_cpu

        received = [0]
        watchers = yield defer.gatherResults([joined(node, realm=crossbar.REALM)
                                              for _ in range(subscribers)])
        for watcher in watchers:
            yield watcher.subscribe(lambda *a, **kw: received.__setitem__(0, received[0] + 1),
                                    "webkernel.kernel.", options=_prefix())
        router_cpu = tree_cpu(node.process.process.pid)
        start = received[0]
        until = time.monotonic() + seconds
        yield defer.gatherResults([
            closed_loop(reactor, s, f"webkernel.kernel.{k}.execute",
                        ("for i in range(200): print(i, flush=True)",), until)
            for k, s in zip(kernels, sessions)])
        deliveries = (received[0] - start) / seconds
        deliver_router = tree_cpu(node.process.process.pid) - router_cpu
        yield leave(client, *sessions, *watchers)
        return {"hosts": hosts, "kernels": len(kernels), "executions_per_s": executions,
                "router_cpu_exec": exec_router / seconds, "deliveries_per_s": deliveries,
                "router_cpu_deliver": deliver_router / seconds}
    finally:
        for process in reversed(running):
            process.stop()
        shutil.rmtree(work, True)


def _prefix():
    from autobahn.wamp.types import SubscribeOptions
    return SubscribeOptions(match="prefix")


@defer.inlineCallbacks
def main(reactor, argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=4)
    args = parser.parse_args(argv)
    if crossbar.missing():
        raise SystemExit(crossbar.missing())
    print(f"{'hosts':>5} {'kernels':>7} {'exec/s':>8} {'router CPU':>10} "
          f"{'deliveries/s':>12} {'router CPU':>10}   (router CPU: cores busy)")
    for hosts in args.hosts:
        row = yield measure(reactor, hosts, args.seconds, args.subscribers)
        print(f"{row['hosts']:>5} {row['kernels']:>7} {row['executions_per_s']:>8.1f} "
              f"{row['router_cpu_exec']:>10.2f} {row['deliveries_per_s']:>12.0f} "
              f"{row['router_cpu_deliver']:>10.2f}", flush=True)


if __name__ == "__main__":
    task.react(main, (sys.argv[1:],))
