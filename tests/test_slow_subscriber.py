"""A watcher that stops reading while a kernel floods output: bounded, and nothing lost silently.

A raw RawSocket peer subscribes to a kernel's iopub and reads nothing while
another client runs a cell printing ~20 MB. The service's memory stays bounded;
when the slow peer reads again, every output seq of the cell is accounted for:
delivered, coalesced into a merged stream, superseded, or inside an explicit
gap it can fetch with ``outputs(since=…)``.
"""

import json
import socket
import struct
import tempfile

import pytest
import psutil
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests import rawwire
from tests.service import ServiceProcess
from tests.twisted_wamp import joined, leave

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

FLOOD = "for i in range(20000): print(str(i).rjust(1000, '.'), flush=True)"


def slow_subscriber(port, topic):
    """A RawSocket peer with a tiny receive buffer, subscribed (prefix) to *topic*."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(rawwire.TIMEOUT)
    sock.connect(("127.0.0.1", port))
    sock.sendall(bytes([0x7F, 0xF1, 0, 0]))
    rawwire.recv_exactly(sock, 4)
    rawwire.rs_send(sock, [1, "webkernel", {"roles": {"subscriber": {}, "caller": {}}}])
    assert rawwire.rs_recv(sock)[0] == 2
    rawwire.rs_send(sock, [32, 1, {"match": "prefix"}, topic])
    assert rawwire.rs_recv(sock)[0] == 33
    return sock


def read_until_idle(sock, parent_msg_id):
    """Every output event until the idle status of *parent_msg_id* (bounded by the socket timeout)."""
    outputs = []
    while True:
        (size,) = struct.unpack("!I", rawwire.recv_exactly(sock, 4))
        msg = json.loads(rawwire.recv_exactly(sock, size & 0xFFFFFF))
        if msg[0] != 36:
            continue
        kwargs = msg[5]
        outputs.append(kwargs)
        if (kwargs["msg_type"] == "status" and kwargs["parent_msg_id"] == parent_msg_id
                and kwargs["content"].get("execution_state") == "idle"):
            return outputs


def covered(outputs):
    seqs = set()
    for out in outputs:
        if out["msg_type"] == "gap":
            seqs.update(range(out["from_seq"], out["to_seq"] + 1))
        elif "coalesced" in out:
            seqs.update(range(out["coalesced"][0], out["coalesced"][1] + 1))
        else:
            seqs.add(out["seq"])
        seqs.update(out.get("superseded", []))
    return seqs


class SlowSubscriberTests(TestCase):
    """Backpressure for kernel output, end to end."""

    timeout = 180

    @defer.inlineCallbacks
    def test_flood_to_a_reader_that_stops(self):
        """The slow peer gets coalesced output and gaps covering every seq; memory stays bounded."""
        service = ServiceProcess("--anonymous", "--kernel-dir", tempfile.mkdtemp(prefix="webkernel-slow-"),
                                 "--coalesce-above", "262144", "--gap-above", "1048576")
        self.addCleanup(service.stop)
        client = yield joined(service, realm="webkernel")
        kernel = yield client.call("webkernel.kernels.start").addTimeout(60, reactor)
        kid = kernel["id"]
        slow = slow_subscriber(service.port, f"webkernel.kernel.{kid}.iopub")
        self.addCleanup(slow.close)
        result = yield client.call(f"webkernel.kernel.{kid}.execute", FLOOD).addTimeout(120, reactor)
        final = result.kwresults
        # the final result is bounded too: it names the outputs it leaves out
        self.assertIsNotNone(final["omitted"])
        first, last = final["omitted"][0], final["outputs"][-1]["seq"]
        self.assertEqual(final["omitted"][1] + 1, final["outputs"][0]["seq"])
        self.assertGreater(last - first, 1000)
        rss = psutil.Process(service.process.pid).memory_info().rss
        self.assertLess(rss, 400 * 1024 * 1024)
        outputs = read_until_idle(slow, final["msg_id"])
        cell = [o for o in outputs if o["msg_type"] == "gap" or (o["seq"] or 0) >= first]
        kinds = {o["msg_type"] for o in cell} | {"coalesced" for o in cell if "coalesced" in o}
        self.assertTrue({"gap", "coalesced"} & kinds, kinds)
        self.assertLess(len(cell), 20004)  # it was bounded, not replayed in full
        self.assertTrue(set(range(first, last + 1)) <= covered(cell))
        gap = next((o for o in cell if o["msg_type"] == "gap"), None)
        if gap is not None:
            history = (yield client.call(f"webkernel.kernel.{kid}.outputs", since=gap["from_seq"] - 1,
                                         limit=10)).kwresults
            self.assertEqual(history["outputs"][0]["seq"] if history["complete"] else history["first_seq"],
                             gap["from_seq"] if history["complete"] else history["first_seq"])
        yield client.call(f"webkernel.kernel.{kid}.shutdown")
        yield leave(client)
