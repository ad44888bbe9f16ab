"""One client flooding its own backlog does not freeze the service for the others (issue 10).

A RawSocket peer with a tiny receive buffer subscribes to a topic and publishes
~34,000 events of 400 bytes to itself (``exclude_me: false``), never reading:
every event waits in its backlog, past ``--gap-above``. Beside it a healthy
client keeps calling; its calls must be answered while the flood is still
being sent (the service reads the flood only as fast as it handles it, so a
flooder still sending is a service still busy with the flood). Before the
backlog was linear, each event past the mark walked the whole backlog and the
healthy client waited minutes. No timing is asserted: only that answers come
while the flood is on.
"""

import socket
import tempfile

import pytest
from twisted.internet import defer, reactor, threads
from twisted.trial.unittest import TestCase

from tests import rawwire
from tests.service import ServiceProcess
from tests.twisted_wamp import joined, leave

pytestmark = pytest.mark.integration

EVENTS = 34_000
TOPIC = "com.example.flood"


def flooder(port):
    """A RawSocket peer that reads (almost) nothing, subscribed to TOPIC."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)  # sendall may wait while the service works through the flood
    sock.connect(("127.0.0.1", port))
    sock.sendall(bytes([0x7F, 0xF1, 0, 0]))
    rawwire.recv_exactly(sock, 4)
    rawwire.rs_send(sock, [1, "webkernel", {"roles": {"subscriber": {}, "publisher": {}}}])
    assert rawwire.rs_recv(sock)[0] == 2
    rawwire.rs_send(sock, [32, 1, {}, TOPIC])
    assert rawwire.rs_recv(sock)[0] == 33
    return sock


def flood(sock):
    """Publish EVENTS events of 400 bytes to ourselves, and read none of them."""
    payload = "x" * 400
    for request in range(2, EVENTS + 2):
        rawwire.rs_send(sock, [16, request, {"exclude_me": False}, TOPIC, [payload]])


class FloodIsolationTests(TestCase):
    """A healthy client beside a flooding one, over real sockets."""

    timeout = 300

    @defer.inlineCallbacks
    def test_calls_are_answered_while_a_client_floods_itself(self):
        """The healthy client's calls complete while the flood is being sent and handled."""
        service = ServiceProcess("--anonymous", "--no-kernels",
                                 "--kernel-dir", tempfile.mkdtemp(prefix="webkernel-flood-"),
                                 "--max-output", str(64 * 1024 * 1024))
        self.addCleanup(service.stop)
        healthy = yield joined(service, realm="webkernel")
        sock = flooder(service.port)  # joined before the first count
        self.addCleanup(sock.close)
        flooding = threads.deferToThread(flood, sock)
        sessions = yield healthy.call("wamp.session.count").addTimeout(60, reactor)
        answered_during_flood = 0
        while not flooding.called:
            count = yield healthy.call("wamp.session.count").addTimeout(60, reactor)
            self.assertEqual(count, sessions)  # the flooder is still there
            if not flooding.called:
                answered_during_flood += 1
        yield flooding  # raises if the flooder was cut off
        self.assertGreaterEqual(answered_during_flood, 3)
        # the flood is all waiting for the flooder; the healthy client goes on as before
        self.assertEqual((yield healthy.call("wamp.session.count").addTimeout(60, reactor)),
                         sessions)
        yield leave(healthy)
