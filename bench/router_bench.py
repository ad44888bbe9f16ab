"""
Benchmark webkernel's embedded WAMP router side by side with Crossbar.io.

Runs each router in turn on a free loopback port (Crossbar.io from the
``bench/.venv-crossbar`` virtualenv that ``run_router_bench.sh`` prepares,
webkernel as ``twistd -n webkernel``), measures with the same client code:

1. RPC: sequential echo calls between two sessions (p50/p90/p99 round trip);
2. fan-out: one publisher, N subscriber sessions in M processes, deliveries/s;

then prints a table and the webkernel/Crossbar.io ratios.  See
``docs/benchmarks.md``.
"""

import argparse
import functools
import json
import os
import re
import sys
import tempfile

from twisted.internet import task
from twisted.internet.defer import Deferred

import report
from cpu import tree_cpu_seconds
from routers import REALM, ROUTER_SPECS, start_router
from workload import RouterResult, measure_fanout, measure_rpc

LOG_PROBLEM = re.compile(r"Traceback|Unhandled|#critical\]|#error\]|\bERROR\b")


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--routers", default="webkernel,crossbar",
                        help="comma-separated routers to run, in order (default: %(default)s)")
    parser.add_argument("--router-only", choices=sorted(ROUTER_SPECS),
                        help="run only this router (same as --routers NAME)")
    parser.add_argument("--passes", type=int, default=1,
                        help="run the routers in turn this many times (A B A B ...), pooling"
                             " the samples, to spread out background load (default: %(default)s)")
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"])
    parser.add_argument("--calls", type=int, default=2000, help="measured echo calls")
    parser.add_argument("--warmup-calls", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--subscriber-processes", type=int, default=2)
    parser.add_argument("--events", type=int, default=2000, help="events per fan-out round")
    parser.add_argument("--fanout-rounds", type=int, default=3,
                        help="fan-out rounds per router; the median rate is compared")
    parser.add_argument("--payload-bytes", type=int, default=100,
                        help="size of the string argument of each call and event")
    parser.add_argument("--phase-timeout", type=float, default=120.0,
                        help="seconds allowed for all RPC calls, or for one fan-out round")
    parser.add_argument("--join-timeout", type=float, default=30.0)
    parser.add_argument("--log-dir",
                        help="where router and worker logs go (default: a new temp dir)")
    parser.add_argument("--json", dest="json_path", help="also write the summaries to this file")
    parser.set_defaults(realm=REALM)
    options = parser.parse_args(argv)
    options.routers = [options.router_only] if options.router_only else options.routers.split(",")
    _check(parser, options)
    return options


def _check(parser, options):
    unknown = set(options.routers) - ROUTER_SPECS.keys()
    if unknown:
        parser.error(f"unknown router(s): {', '.join(sorted(unknown))}")
    if options.subscribers % options.subscriber_processes:
        parser.error("--subscribers must be a multiple of --subscriber-processes")


def progress(text):
    sys.stderr.write(f"[router-bench] {text}\n")
    sys.stderr.flush()


async def bench_router(reactor, result, options, log_dir):
    """Start one router, add both measurements against it to ``result``, stop it."""
    name = result.name
    spec = ROUTER_SPECS[name](log_dir)
    progress(f"{name}: starting on {spec.url}")
    try:
        router = await start_router(reactor, spec, log_dir)
    except Exception as failure:
        result.error = f"did not start: {failure}"
        return
    try:
        router_cpu = functools.partial(tree_cpu_seconds, router.pid)
        await _measure(reactor, spec.url, options, log_dir, result, router_cpu)
    finally:
        progress(f"{name}: stopping")
        await router.stop(reactor)
        result.log_problems = count_log_problems(router.log_path)


def count_log_problems(log_path):
    """How many tracebacks and error-level lines the router wrote to its log."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        return sum(1 for line in log if LOG_PROBLEM.search(line))


async def _measure(reactor, url, options, log_dir, result, router_cpu):
    try:
        progress(f"{result.name}: RPC, {options.warmup_calls} warm-up + {options.calls} calls")
        await measure_rpc(reactor, url, options, log_dir, result, router_cpu)
        progress(f"{result.name}: fan-out, {options.fanout_rounds} x {options.events} events"
                 f" to {options.subscribers} subscribers")
        await measure_fanout(reactor, url, options, log_dir, result, router_cpu)
    except Exception as failure:
        result.error = f"{type(failure).__name__}: {failure}"


def render(summaries, options, log_dir):
    found = report.ratios(summaries)
    lines = [
        f"serializer={options.serializer} calls={options.calls} (+{options.warmup_calls} warm-up)"
        f" subscribers={options.subscribers} in {options.subscriber_processes} processes"
        f" events={options.events} x {options.fanout_rounds} rounds"
        f" payload={options.payload_bytes} B"
        f" passes={options.passes} cpus={os.cpu_count()}",
        "",
        report.rpc_table(summaries),
        "",
        report.fanout_table(summaries),
        "",
        *report.ratio_lines(found),
        *report.errors(summaries),
        *report.log_problems(summaries),
        f"logs: {log_dir}",
    ]
    return "\n".join(lines) + "\n", found


async def main(reactor, options):
    log_dir = options.log_dir or tempfile.mkdtemp(prefix="router-bench-")
    os.makedirs(log_dir, exist_ok=True)
    results = [RouterResult(name) for name in options.routers]
    for pass_number in range(1, options.passes + 1):
        progress(f"pass {pass_number} of {options.passes}")
        for result in results:
            if not result.error:
                await bench_router(reactor, result, options, log_dir)
    summaries = [report.summarize(result) for result in results]
    text, found = render(summaries, options, log_dir)
    sys.stdout.write(text)
    if options.json_path:
        with open(options.json_path, "w") as out:
            document = {"options": vars(options), "results": summaries, "ratios": found}
            json.dump(document, out, indent=2)
    if any(summary["error"] for summary in summaries):
        raise SystemExit(1)


if __name__ == "__main__":
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, parse_options())))
