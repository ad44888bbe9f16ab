"""
Client processes of the router benchmark: the RPC callee and the fan-out subscribers.

The driver (``router_bench.py``) starts this script as a child process and talks
to it in JSON lines: the worker writes events (``ready``, ``done``, ``status``)
to stdout and reads commands (``report``) from stdin; the end of stdin tells
it to leave and exit.

``callee`` joins one session and registers the echo procedure.
``subscribers`` joins N sessions that each subscribe to the fan-out topic and
count the events of each round; when every session has every event of a round
it reports ``done`` with the ``time.monotonic()`` at which the last event
arrived.  That clock is system-wide on Linux (CLOCK_MONOTONIC), so the driver
can subtract its own first-publish time from it.
"""

import argparse
import json
import time

from twisted.internet import stdio, task
from twisted.internet.defer import Deferred, gatherResults
from twisted.protocols.basic import LineReceiver

from wamp_client import close_sessions, connect_session

ECHO_PROCEDURE = "bench.echo"
FANOUT_TOPIC = "bench.fanout"


class DriverChannel(LineReceiver):
    """JSON lines to and from the driver over this process's stdin and stdout."""

    delimiter = b"\n"

    def __init__(self):
        self.commands = {}
        self.closed = Deferred()

    def send(self, **fields):
        self.sendLine(json.dumps(fields).encode())

    def lineReceived(self, line):
        command = json.loads(line)
        handler = self.commands.get(command["command"])
        if handler is not None:
            handler(command)

    def connectionLost(self, reason):
        if not self.closed.called:
            self.closed.callback(None)


class RoundTally:
    """What each subscriber session received in one fan-out round."""

    def __init__(self, sessions):
        self.received = [0] * sessions
        self.anomalies = 0
        self.complete_sessions = 0
        self.last_at = None

    def record(self, index, seq, expected):
        """Count one event; return True when this event completes the round."""
        if seq != self.received[index]:
            self.anomalies += 1
        self.received[index] += 1
        if self.received[index] == expected:
            self.complete_sessions += 1
            if self.complete_sessions == len(self.received):
                self.last_at = time.monotonic()
                return True
        return False


class FanoutSubscribers:
    """Subscriber sessions of one process, tallying events round by round."""

    def __init__(self, channel, sessions, events):
        self.channel = channel
        self.sessions = sessions
        self.events = events
        self.rounds = {}
        channel.commands["report"] = self.report

    def handler(self, index):
        def on_event(round_, seq, payload):
            if self._tally(round_).record(index, seq, self.events):
                self._send_done(round_)

        return on_event

    def report(self, command):
        tally = self._tally(command["round"])
        self.channel.send(
            event="status", round=command["round"],
            received=tally.received, anomalies=tally.anomalies,
        )

    def _tally(self, round_):
        if round_ not in self.rounds:
            self.rounds[round_] = RoundTally(self.sessions)
        return self.rounds[round_]

    def _send_done(self, round_):
        tally = self.rounds[round_]
        self.channel.send(
            event="done", round=round_, last_at=tally.last_at,
            received=sum(tally.received), anomalies=tally.anomalies,
        )


def echo(payload):
    """The procedure under test: return its argument unchanged."""
    return payload


async def run_callee(reactor, options, channel):
    session = await connect_session(reactor, options.url, options.realm, options.serializer)
    await session.register(echo, ECHO_PROCEDURE)
    channel.send(event="ready")
    await channel.closed
    await close_sessions(reactor, [session])


async def run_subscribers(reactor, options, channel):
    fanout = FanoutSubscribers(channel, options.sessions, options.events)
    sessions = await gatherResults([
        Deferred.fromCoroutine(_subscriber(reactor, options, fanout.handler(index)))
        for index in range(options.sessions)
    ], consumeErrors=True)
    channel.send(event="ready")
    await channel.closed
    await close_sessions(reactor, sessions)


async def _subscriber(reactor, options, on_event):
    session = await connect_session(reactor, options.url, options.realm, options.serializer)
    await session.subscribe(on_event, FANOUT_TOPIC)
    return session


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("role", choices=["callee", "subscribers"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"])
    parser.add_argument("--sessions", type=int, default=25)
    parser.add_argument("--events", type=int, default=2000)
    return parser.parse_args(argv)


async def main(reactor, options):
    channel = DriverChannel()
    stdio.StandardIO(channel, reactor=reactor)
    run = run_callee if options.role == "callee" else run_subscribers
    await run(reactor, options, channel)


if __name__ == "__main__":
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, parse_options())))
