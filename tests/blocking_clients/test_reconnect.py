"""The blocking client across a dropped connection, against the real service with toy kernels.

The client reaches the service (``tests.toy_service``) through a TCP relay
(``tests/relay.py``) running in crochet's reactor thread; the test severs it
from the ``on_output`` callback, in the calling thread, while the toy kernel
prints numbered lines. Every wait is bounded.
"""

import queue
import unittest

import crochet
import pytest

from broker.client import connect
from broker.kernel.results import seq_range
from tests.relay import Relay
from tests.service import ServiceProcess

TOKEN = "blocking-reconnect-token"
WAIT = 10
LINES = 300
pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside crochet 2.1


@crochet.wait_for(timeout=WAIT)
def _in_reactor(function, *args):
    return function(*args)


def _start_relay(port):
    from twisted.internet import reactor
    relay = Relay(port)
    return relay.listen(reactor).addCallback(lambda _: relay)


class BlockingReconnectTests(unittest.TestCase):
    """An execute and a watch of the blocking client go on after the connection is severed."""

    @classmethod
    def setUpClass(cls):
        crochet.setup()
        cls.service = ServiceProcess("--token", TOKEN, module="tests.toy_service")

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()

    def setUp(self):
        self.relay = _in_reactor(_start_relay, self.service.port)
        self.addCleanup(_in_reactor, self.relay.close)

    def test_execute_and_watch_across_a_drop(self):
        """on_output and the watch each get every output once, in order; execute returns the real result."""
        client = connect(f"http://127.0.0.1:{self.relay.port_number}/?token={TOKEN}", timeout=WAIT)
        self.addCleanup(client.close)
        k = client.start_kernel()
        watched = queue.SimpleQueue()
        watch = k.watch(watched.put)
        progress, lines_seen = [], []

        def on_output(output):
            progress.append(output)
            lines_seen.extend((output["content"].get("text") or "").splitlines())
            if len(lines_seen) >= 100 and self.relay.connections == 1 and not severed:
                severed.append(True)
                _in_reactor(self.relay.sever)
        severed = []
        code = f"import time\nfor i in range({LINES}):\n    print(i)\n    time.sleep(0.002)\n'end'"
        result = k.execute(code, on_output=on_output)

        self.assertEqual(self.relay.connections, 2)
        lines = "".join(f"{i}\n" for i in range(LINES))
        self.assertEqual("".join(o["content"]["text"] for o in progress if o["msg_type"] == "stream"), lines)
        # lines that reached the service together may come merged (coalesced: [first, last])
        seqs = [seq for o in progress for seq in range(seq_range(o)[0], seq_range(o)[1] + 1)]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        self.assertEqual((result["status"], result["reply"]["status"], result["msg_id"]),
                         ("ok", "ok", progress[0]["parent_msg_id"]))
        self.assertEqual([seq for o in result["outputs"]
                          for seq in range(seq_range(o)[0], seq_range(o)[1] + 1)], seqs)
        self.assertEqual(progress[-2]["content"]["data"]["text/plain"], "'end'")

        seen = []
        while not seen or seen[-1]["seq"] != seqs[-1]:
            seen.append(watched.get(timeout=WAIT))
        watch.stop()
        self.assertEqual([o["seq"] for o in seen], list(range(seen[0]["seq"], seqs[-1] + 1)))
        self.assertEqual([o["seq"] for o in seen if o["parent_msg_id"] == result["msg_id"]], seqs)
