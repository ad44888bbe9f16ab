"""The Python client survives a dropped connection: real ``twistd webkernel``, real ipykernel, real sockets.

The client reaches the service through a TCP relay (``tests/relay.py``) that
the test severs while a kernel prints numbered lines: both sides of the
connection are aborted at once, as a network failure looks, and the relay
accepts again, so the client reconnects. Every wait is bounded; nothing
sleeps.
"""

import shutil
import tempfile

import pytest
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from broker.client import ConnectionLost, connect_async
from broker.kernel.results import seq_range
from tests.relay import Relay
from tests.service import ServiceProcess

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

WAIT = 60
LINES = 2000
PRINTS = ("import time\n"
          f"for i in range({LINES}):\n"
          "    print(i, flush=True)\n"
          "    time.sleep(0.001)\n"
          "'printed'")


def bounded(d, seconds=WAIT):
    return d.addTimeout(seconds, reactor)


def covered(outputs):
    """The seqs a list of outputs stands for, in delivery order (a coalesced one for each of its)."""
    seqs = []
    for output in outputs:
        first, last = seq_range(output)
        seqs.extend(range(first, last + 1))
    return seqs


def printed(outputs):
    """The stdout text of *outputs*."""
    return "".join(o["content"]["text"] for o in outputs
                   if o["msg_type"] == "stream" and o["content"].get("name") == "stdout")


class Seen:
    """Collects outputs; ``until(predicate)`` waits (bounded) for one that matches."""

    def __init__(self):
        self.outputs = []
        self._waiting = []

    def __call__(self, output):
        self.outputs.append(output)
        for predicate, d in list(self._waiting):
            if predicate(output):
                self._waiting.remove((predicate, d))
                d.callback(output)

    def until(self, predicate):
        for output in self.outputs:
            if predicate(output):
                return defer.succeed(output)
        d = defer.Deferred()
        self._waiting.append((predicate, d))
        return bounded(d)


def idle_of(msg_id):
    return lambda o: (o["msg_type"] == "status" and o["parent_msg_id"] == msg_id
                      and o["content"]["execution_state"] == "idle")


class ReconnectTests(TestCase):
    """Watches and executions in flight go on across a severed connection."""

    timeout = 180

    @classmethod
    def setUpClass(cls):
        cls.kernel_dir = tempfile.mkdtemp(prefix="webkernel-reconnect-")
        cls.service = ServiceProcess("--kernel-dir", cls.kernel_dir, "--max-kernels", "4")

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()
        shutil.rmtree(cls.kernel_dir, ignore_errors=True)

    @defer.inlineCallbacks
    def setUp(self):
        self.relay = Relay(self.service.port)
        yield self.relay.listen(reactor)
        self.addCleanup(self.relay.close)
        # a client that is not behind the relay: to observe, and to shut kernels down
        self.direct = yield connect_async(f"http://127.0.0.1:{self.service.port}/",
                                          token=self.service.token, timeout=WAIT, reconnect=False)
        self.addCleanup(self.direct.close)

    @defer.inlineCallbacks
    def client(self, **options):
        client = yield connect_async(f"http://127.0.0.1:{self.relay.port_number}/",
                                     token=self.service.token, timeout=WAIT, **options)
        self.addCleanup(client.close)
        return client

    @defer.inlineCallbacks
    def kernel(self, client):
        kernel = yield client.start_kernel()
        self.addCleanup(lambda: self.direct.call(f"webkernel.kernel.{kernel.id}.shutdown"))
        return kernel

    @defer.inlineCallbacks
    def test_watch_and_execute_survive_a_dropped_connection(self):
        """Severed mid-stream: watch and on_output each see every output once, in order; execute returns the real result."""
        client = yield self.client()
        first_session, authid = client.session.session_id, client.authid
        kernel = yield self.kernel(client)
        watched = Seen()
        watch = yield kernel.watch(watched)
        progress, cut_at = [], []

        def on_output(output):
            progress.append(output)
            if not cut_at and printed(progress).count("\n") >= LINES // 4:
                cut_at.append(len(progress))
                self.relay.sever()
        result = yield bounded(kernel.execute(PRINTS, on_output=on_output))
        msg_id = result["msg_id"]
        yield watched.until(idle_of(msg_id))
        yield watch.stop()

        # the connection really dropped mid-stream, and a new session took over under the same authid
        self.assertTrue(cut_at)
        self.assertLess(cut_at[0] + 100, len(progress))
        self.assertEqual(self.relay.connections, 2)
        self.assertNotEqual(client.session.session_id, first_session)
        self.assertEqual(client.authid, authid)
        self.assertEqual([m["owner"] for m in (yield client.kernels()) if m["id"] == kernel.id], [authid])

        # on_output: every output of the execution, exactly once, in order
        ours = yield self.history_of(kernel, msg_id, progress[0]["seq"])
        self.assertEqual(covered(progress), [o["seq"] for o in ours])
        self.assertEqual({o["parent_msg_id"] for o in progress}, {msg_id})
        self.assertEqual(printed(progress), "".join(f"{i}\n" for i in range(LINES)))
        self.assertEqual(covered(result["outputs"]), covered(progress))

        # the final result is the service's reply
        execute_input = [o for o in progress if o["msg_type"] == "execute_input"][0]
        reply = yield kernel.reply(msg_id)
        self.assertEqual((result["status"], result["execution_count"], result["omitted"]),
                         ("ok", execute_input["content"]["execution_count"], None))
        self.assertEqual(result["reply"], reply["reply"])
        self.assertEqual(result["reply"]["status"], "ok")
        self.assertEqual(progress[-2]["content"]["data"]["text/plain"], "'printed'")

        # the watch: every seq of the cell exactly once, increasing, every line once
        seqs = covered(watched.outputs)
        self.assertEqual(seqs, sorted(set(seqs)))
        cell = [o for o in watched.outputs if o["parent_msg_id"] == msg_id]
        first, last = seq_range(cell[0])[0], seq_range(cell[-1])[1]
        self.assertEqual([s for s in seqs if first <= s <= last], list(range(first, last + 1)))
        self.assertEqual(printed(cell), "".join(f"{i}\n" for i in range(LINES)))
        self.assertFalse([o for o in watched.outputs if o["msg_type"] == "gap"])

    @defer.inlineCallbacks
    def test_execute_cut_before_any_progress_is_found_by_its_session_and_code(self):
        """An execute without progress cut by the drop is found by caller session and code; its result is complete."""
        client = yield self.client()
        kernel = yield self.kernel(client)
        observed = Seen()
        observer = yield (yield self.direct.kernel(kernel.id)).watch(observed)
        self.addCleanup(observer.stop)
        old_session = client.session.session_id
        code = PRINTS.replace(str(LINES), "300")
        execution = kernel.execute(code)
        started = yield observed.until(lambda o: o["msg_type"] == "execute_input"
                                       and (o["caller"] or {}).get("session") == old_session)
        self.relay.sever()
        result = yield bounded(execution)

        self.assertEqual(self.relay.connections, 2)
        self.assertEqual(result["msg_id"], started["parent_msg_id"])
        ours = yield self.history_of(kernel, result["msg_id"], 0)
        self.assertEqual([o["seq"] for o in result["outputs"]], [o["seq"] for o in ours])
        self.assertEqual(printed(result["outputs"]), "".join(f"{i}\n" for i in range(300)))
        self.assertEqual((result["status"], result["execution_count"]),
                         ("ok", started["content"]["execution_count"]))
        self.assertEqual(result["reply"], (yield kernel.reply(result["msg_id"]))["reply"])

    @defer.inlineCallbacks
    def test_a_partition_is_noticed_by_the_ping_and_reconnected(self):
        """A link that goes silent without closing: the unanswered ping drops it and the client joins again."""
        client = yield self.client(ping_interval=0.5, ping_timeout=1)
        first_session = client.session.session_id
        self.relay.freeze()
        yield bounded(self.relay.connection(2))
        yield bounded(client.kernelspecs())  # waits for the new session
        self.assertNotEqual(client.session.session_id, first_session)

    @defer.inlineCallbacks
    def test_without_reconnect_a_drop_is_connection_lost(self):
        """reconnect=False: the execute in flight and every later call fail with ConnectionLost."""
        client = yield self.client(reconnect=False)
        kernel = yield self.kernel(client)
        running = defer.Deferred()

        def on_output(output):
            if output["msg_type"] == "stream" and not running.called:
                running.callback(None)
        execution = kernel.execute("import time\nprint('x', flush=True)\ntime.sleep(30)",
                                   on_output=on_output)
        yield bounded(running)
        self.relay.sever()
        yield self.assertFailure(bounded(execution), ConnectionLost)
        yield self.assertFailure(bounded(kernel.eval_cell("1")), ConnectionLost)
        yield self.direct.call(f"webkernel.kernel.{kernel.id}.interrupt")

    @defer.inlineCallbacks
    def test_gives_up_after_reconnect_timeout(self):
        """When the service cannot be reached again within reconnect_timeout, the execute fails with ConnectionLost."""
        client = yield self.client(reconnect_timeout=1)
        kernel = yield self.kernel(client)
        running = defer.Deferred()

        def on_output(output):
            if output["msg_type"] == "stream" and not running.called:
                running.callback(None)
        execution = kernel.execute("import time\nprint('x', flush=True)\ntime.sleep(30)",
                                   on_output=on_output)
        yield bounded(running)
        yield self.relay.stop_accepting()
        self.relay.sever()
        failure = yield self.assertFailure(bounded(execution, 10), ConnectionLost)
        self.assertIn("within 1 s", str(failure))
        yield self.assertFailure(kernel.eval_cell("1"), ConnectionLost)
        yield self.direct.call(f"webkernel.kernel.{kernel.id}.interrupt")

    @defer.inlineCallbacks
    def test_close_never_reconnects(self):
        """After close() the client has no session and does not reconnect; calls fail with ConnectionLost."""
        client = yield self.client()
        yield client.close()
        self.assertIsNone(client.session)
        self.assertFalse(client.keeper.reconnects)
        yield self.assertFailure(client.kernels(), ConnectionLost)
        self.assertEqual(self.relay.connections, 1)

    @defer.inlineCallbacks
    def history_of(self, kernel, msg_id, since):
        """Every output the kernel's history holds for request *msg_id* after seq *since* (all of it)."""
        page = yield self.direct.call(f"webkernel.kernel.{kernel.id}.outputs", since=max(0, since - 1))
        self.assertTrue(page["complete"])
        return [o for o in page["outputs"] if o["parent_msg_id"] == msg_id]
