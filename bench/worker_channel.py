"""
The JSON-lines conversation of a benchmark worker with its driver (``processes.WorkerProcess``).

``Commands`` reads the driver's commands from stdin (``lines`` is a queue of
them; ``None`` once stdin is closed, which is the driver's way of saying "leave");
``emit`` writes one event to stdout.
"""

import json
import sys

from twisted.internet import defer
from twisted.protocols.basic import LineReceiver


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self):
        self.lines = defer.DeferredQueue()
        self.lost = defer.Deferred()

    def lineReceived(self, line):
        self.lines.put(json.loads(line))

    def connectionLost(self, reason):
        self.lines.put(None)
        self.lost.callback(None)


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()
