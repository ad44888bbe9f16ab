"""
Watcher processes of the kernel benchmark's fan-out: N connections watching one kernel.

The driver (``kernel_bench.py``) starts this script as a child process and talks to it
in JSON lines, as with ``bench_worker.py`` (whose ``DriverChannel`` it uses): the
worker writes ``ready`` once every watcher is connected, then one ``done`` per
fan-out round; the end of stdin tells it to close its connections and exit.

``webkernel``: each watcher is a WAMP session with a prefix subscription on
``webkernel.kernel.<id>.iopub`` (every iopub message of the kernel).
``jupyter``: each watcher is a WebSocket on Jupyter Server's
``/api/kernels/<id>/channels`` (each gets every iopub message of the kernel).

A round is the cell ``# fan-out round R`` + a loop printing ``--lines`` flushed
lines, run by the driver over its own connection.  A watcher recognises the
round's execution by its ``execute_input`` (the code's first line), counts the
lines of that execution's stdout and ends the round at its ``status: idle``
(which the kernel sends after the last line).  When every watcher of the process
has ended round R, the worker reports ``done`` with the lines each received and
the ``time.monotonic()`` (system-wide on Linux) at which the last of them got its
last line: the driver subtracts the time it sent the cell.  A watcher that never
sees the round's ``idle`` (Jupyter Server can lose it as it loses lines) keeps the
round open; the driver then asks with ``{"command": "report", "round": R}`` and
the worker answers ``status`` with what it has.
"""

import argparse
import time

from autobahn.wamp.types import SubscribeOptions
from twisted.internet import stdio, task
from twisted.internet.defer import Deferred, gatherResults

from bench_worker import DriverChannel
from kernel_cells import WEBKERNEL_REALM, LineCounter, round_tag
from kernel_clients import JupyterKernel
from wamp_client import close_sessions, connect_session

ROUND_PREFIX = "# " + round_tag("")


class Watcher:
    """What one watcher connection saw of each round."""

    def __init__(self, watchers, lines):
        self.watchers = watchers
        self.lines = lines
        self.rounds_by_msg = {}   # parent msg_id -> round
        self.counters = {}        # round -> LineCounter
        self.ended_at = {}        # round -> monotonic time of its idle

    def output(self, msg_type, parent_id, content):
        if msg_type == "execute_input":
            code = content.get("code", "")
            if code.startswith(ROUND_PREFIX):
                round_ = int(code[len(ROUND_PREFIX):].split("\n", 1)[0])
                self.rounds_by_msg[parent_id] = round_
                self.counters[round_] = LineCounter(self.lines)
            return
        round_ = self.rounds_by_msg.get(parent_id)
        if round_ is None:
            return
        if msg_type == "status" and content.get("execution_state") == "idle":
            self.ended_at[round_] = time.monotonic()
            self.watchers.round_ended(round_)
        else:
            self.counters[round_].feed_output(msg_type, content)


class Watchers:
    """The watchers of this process; reports each round once all have ended it."""

    def __init__(self, channel, count, lines):
        self.channel = channel
        self.lines = lines
        self.members = [Watcher(self, lines) for _ in range(count)]
        channel.commands["report"] = self.report

    def round_ended(self, round_):
        if all(round_ in member.ended_at for member in self.members):
            self.channel.send(event="done", **self._tally(round_))

    def report(self, command):
        """What every watcher has of a round that did not end everywhere in time."""
        self.channel.send(event="status", **self._tally(command["round"]))

    def _tally(self, round_):
        counters = [member.counters.get(round_) or LineCounter(self.lines)
                    for member in self.members]
        ended = [member.ended_at[round_] for member in self.members if round_ in member.ended_at]
        complete = all(counter.complete for counter in counters)
        last_line = max((c.last_line_at for c in counters if c.last_line_at), default=None)
        return dict(
            round=round_,
            # every line at every watcher: the last watcher's last line
            last_at=last_line if complete else None,
            # the last line that arrived at any watcher, complete or not
            last_line_at=last_line,
            # every watcher has seen the round's end (idle), with or without every line
            ended_at=max(ended) if len(ended) == len(self.members) else None,
            ended=len(ended),
            received=[counter.distinct for counter in counters],
            missing=sum(counter.missing for counter in counters),
            disorder=sum(counter.disorder for counter in counters),
        )


async def run_webkernel(reactor, options, watchers):
    prefix = f"webkernel.kernel.{options.kernel}.iopub"

    async def watch(member):
        session = await connect_session(reactor, options.url, WEBKERNEL_REALM, options.serializer)

        def on_event(*args, **output):
            member.output(output["msg_type"], output["parent_msg_id"], output["content"])

        await session.subscribe(on_event, prefix, options=SubscribeOptions(match="prefix"))
        return session

    sessions = await gatherResults(
        [Deferred.fromCoroutine(watch(member)) for member in watchers.members],
        consumeErrors=True)
    watchers.channel.send(event="ready")
    await watchers.channel.closed
    await close_sessions(reactor, sessions)


async def run_jupyter(reactor, options, watchers):
    async def watch(member):
        kernel = JupyterKernel(options.url, options.token, options.kernel)

        def on_iopub(msg):
            member.output(msg["header"]["msg_type"],
                          (msg.get("parent_header") or {}).get("msg_id"), msg["content"])

        kernel.on_iopub = on_iopub
        return await kernel.connect(reactor)

    kernels = []
    for member in watchers.members:  # one at a time: each makes the server open 4 sockets
        kernels.append(await watch(member))
    watchers.channel.send(event="ready")
    await watchers.channel.closed
    await gatherResults([Deferred.fromCoroutine(k.close(reactor)) for k in kernels],
                        consumeErrors=True)


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("system", choices=["webkernel", "jupyter"])
    parser.add_argument("--url", required=True,
                        help="webkernel: its ws://…/ws URL; jupyter: the server's http:// URL")
    parser.add_argument("--kernel", required=True, help="the kernel id")
    parser.add_argument("--token", help="Jupyter Server's token")
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"])
    parser.add_argument("--watchers", type=int, default=25)
    parser.add_argument("--lines", type=int, default=2000)
    return parser.parse_args(argv)


async def main(reactor, options):
    channel = DriverChannel()
    stdio.StandardIO(channel, reactor=reactor)
    watchers = Watchers(channel, options.watchers, options.lines)
    run = run_webkernel if options.system == "webkernel" else run_jupyter
    await run(reactor, options, watchers)


if __name__ == "__main__":
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, parse_options())))
