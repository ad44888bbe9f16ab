"""
A fast subscriber of the slow-peer benchmark (``slow_peer_bench.py``), one per process.

Subscribes (prefix) to one kernel's iopub and, for each round the driver announces,
counts the bytes of stdout text of that round's cell until all have arrived; then
reports when that was. A coalesced stream output counts like the outputs it stands
for (its text is theirs); a gap marker is counted (a fast subscriber should never get one) and its bytes
are fetched with ``outputs(since=…)`` so the round still ends.

JSON lines with the driver: ``ready`` once subscribed; the command ``round`` (with
``tag`` and ``bytes``) answers ``round_done`` with ``done_at`` (``time.monotonic()``),
``gaps`` and ``coalesced``.
"""

import argparse
import time

import broker  # noqa: F401  (selects Twisted for txaio)
from autobahn.wamp.types import SubscribeOptions
from twisted.internet import defer, stdio, task

from worker_channel import Commands, emit
from kernel_cells import WEBKERNEL_REALM
from wamp_client import close_sessions, connect_session




class Round:
    """One cell's stdout bytes (the driver runs one cell at a time on the kernel)."""

    def __init__(self, tag, expected):
        self.tag, self.expected = tag, expected
        self.received = 0
        self.gaps = self.coalesced = 0
        self.done = defer.Deferred()

    def stream(self, output):
        content = output["content"]
        if content.get("name") != "stdout":
            return
        self.received += len(content.get("text", ""))
        if "coalesced" in output:
            self.coalesced += 1
        if self.received >= self.expected and not self.done.called:
            self.done.callback(time.monotonic())


async def main(reactor, options):
    commands = Commands()
    stdio.StandardIO(commands, reactor=reactor)
    session = await connect_session(reactor, options.url, WEBKERNEL_REALM, options.serializer)
    current = [None]

    def on_event(*args, **output):
        round_ = current[0]
        if round_ is None:
            return
        if output["msg_type"] == "stream":
            round_.stream(output)
        elif output["msg_type"] == "gap":
            round_.gaps += 1
            reactor.callLater(0, lambda: defer.ensureDeferred(fetch(round_, output)))

    async def fetch(round_, gap):
        since = gap["from_seq"] - 1
        while since < gap["to_seq"]:
            page = (await session.call(f"webkernel.kernel.{options.kernel}.outputs",
                                       since=since, limit=100)).kwresults
            if not page["outputs"]:
                return
            for output in page["outputs"]:
                if output["seq"] <= gap["to_seq"] and output["msg_type"] == "stream":
                    round_.stream(output)
            since = page["outputs"][-1]["seq"]

    await session.subscribe(on_event, f"webkernel.kernel.{options.kernel}.iopub",
                            options=SubscribeOptions(match="prefix"))
    emit(event="ready")
    while True:
        command = await commands.lines.get()
        if command is None:
            break
        round_ = current[0] = Round(command["tag"], command["bytes"])
        done_at = await round_.done.addTimeout(command["timeout"], reactor)
        emit(event="round_done", done_at=done_at, gaps=round_.gaps, coalesced=round_.coalesced,
             received=round_.received)
        current[0] = None
    await close_sessions(reactor, [session])


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--serializer", default="msgpack", choices=["json", "msgpack"])
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, parse_options())))
