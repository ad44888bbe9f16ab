"""Real ipykernel kernels behind the real service, driven by WAMP clients over WebSocket.

One service (subprocess) for the module; kernels started through
``webkernel.kernels.start``. Every wait is bounded; nothing sleeps.
"""

import os
import re
import stat

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, SubscribeOptions
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.service import ServicePerClass
from tests.twisted_wamp import TIMEOUT, joined, leave

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

REALM = "webkernel"
KERNEL_TIMEOUT = 60


def kernel_uri(kernel_id, name):
    return f"webkernel.kernel.{kernel_id}.{name}"


class Collector:
    """Collects events of a subscription; ``until(predicate)`` waits (bounded) for one."""

    def __init__(self):
        self.events = []
        self._waiting = []

    def __call__(self, *args, **kwargs):
        self.events.append(kwargs)
        for predicate, d in list(self._waiting):
            if predicate(kwargs):
                self._waiting.remove((predicate, d))
                d.callback(kwargs)

    def until(self, predicate, timeout=TIMEOUT):
        for event in self.events:
            if predicate(event):
                return defer.succeed(event)
        d = defer.Deferred()
        self._waiting.append((predicate, d))
        return d.addTimeout(timeout, reactor)


class KernelTestCase(ServicePerClass, TestCase):
    """A service with a kernel directory, one client session, helpers to start kernels."""

    timeout = 120
    service_options = ("--anonymous", "--max-kernels", "6")

    @defer.inlineCallbacks
    def setUp(self):
        self.client = yield joined(self.service, realm=REALM)
        self.started = []

    @defer.inlineCallbacks
    def tearDown(self):
        for kernel_id in self.started:
            try:
                yield self.client.call(kernel_uri(kernel_id, "shutdown"))
            except ApplicationError:
                pass  # already gone (the test shut it down)
        yield leave(self.client)

    @defer.inlineCallbacks
    def start_kernel(self, **kwargs):
        model = yield self.client.call("webkernel.kernels.start", **kwargs).addTimeout(
            KERNEL_TIMEOUT, reactor)
        self.started.append(model["id"])
        return model

    def call(self, kernel_id, name, *args, **kwargs):
        return self.client.call(kernel_uri(kernel_id, name), *args, **kwargs).addTimeout(
            KERNEL_TIMEOUT, reactor)

    @defer.inlineCallbacks
    def watch(self, kernel_id, session=None):
        collector = Collector()
        yield (session or self.client).subscribe(
            collector, f"webkernel.kernel.{kernel_id}.iopub", options=SubscribeOptions(match="prefix"))
        return collector


class ExecutionTests(KernelTestCase):
    """Running code: results, streams, rich output, errors, state."""

    @defer.inlineCallbacks
    def test_eval_cell_seed_session(self):
        """eval_cell('2+3') is '5'; a statement gives ''; state is kept between calls."""
        kernel = yield self.start_kernel()
        self.assertEqual(kernel["execution_state"], "idle")
        self.assertEqual((yield self.call(kernel["id"], "eval_cell", "2+3")), "5")
        self.assertEqual((yield self.call(kernel["id"], "eval_cell", "a = 20")), "")
        self.assertEqual((yield self.call(kernel["id"], "eval_cell", "a * 2 + 2")), "42")

    @defer.inlineCallbacks
    def test_eval_cell_error_carries_traceback(self):
        """Failing code raises execution_failed with ename, evalue, Jupyter's traceback lines and their text."""
        kernel = yield self.start_kernel()
        error = yield self.assertFailure(self.call(kernel["id"], "eval_cell", "1/0"), ApplicationError)
        self.assertEqual(error.error, "webkernel.error.execution_failed")
        self.assertEqual(error.kwargs["ename"], "ZeroDivisionError")
        self.assertIn("division by zero", error.kwargs["evalue"])
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in error.kwargs["traceback_lines"]]
        self.assertTrue(any("1/0" in line for line in plain), plain)
        self.assertEqual(error.kwargs["traceback"], "\n".join(error.kwargs["traceback_lines"]))

    @defer.inlineCallbacks
    def test_eval_cell_error_prints_in_a_stock_autobahn_client(self):
        """An unmodified Autobahn ApplicationError of execution_failed formats with str(), traceback included."""
        kernel = yield self.start_kernel()
        error = yield self.assertFailure(self.call(kernel["id"], "eval_cell", "1/0"), ApplicationError)
        printed = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
        self.assertIn("webkernel.error.execution_failed", printed)
        self.assertIn("1/0", printed)

    @defer.inlineCallbacks
    def test_execute_progress_matches_outputs_and_topics(self):
        """Progressive results arrive in order; the final result holds the same outputs; topics see them."""
        kernel = yield self.start_kernel()
        watcher = yield self.watch(kernel["id"])
        progress = []
        code = ("from IPython.display import display, HTML, update_display, clear_output\n"
                "print('out', flush=True)\n"
                "import sys; print('err', file=sys.stderr, flush=True)\n"
                "display(HTML('<b>x</b>'), display_id='d1')\n"
                "update_display(HTML('<b>y</b>'), display_id='d1')\n"
                "clear_output(wait=True)\n"
                "7 * 6")
        result = yield self.call(kernel["id"], "execute", code,
                                 options=CallOptions(on_progress=lambda **o: progress.append(o)))
        final = result.kwresults
        self.assertEqual(final["status"], "ok")
        self.assertEqual([o["seq"] for o in progress], [o["seq"] for o in final["outputs"]])
        seqs = [o["seq"] for o in final["outputs"]]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))  # gap-free
        kinds = [o["msg_type"] for o in final["outputs"]]
        self.assertEqual(kinds, ["status", "execute_input", "stream", "stream", "display_data",
                                 "update_display_data", "clear_output", "execute_result", "status"])
        streams = [(o["content"]["name"], o["content"]["text"]) for o in final["outputs"]
                   if o["msg_type"] == "stream"]
        self.assertEqual(streams, [("stdout", "out\n"), ("stderr", "err\n")])
        update = final["outputs"][5]
        self.assertEqual(update["content"]["transient"], {"display_id": "d1"})
        self.assertEqual(final["outputs"][7]["content"]["data"]["text/plain"], "42")
        self.assertEqual(final["outputs"][0]["caller"]["session"], self.client.details.session)
        last = yield watcher.until(lambda e: e["seq"] == seqs[-1])
        self.assertEqual(last["msg_type"], "status")
        self.assertEqual([e["seq"] for e in watcher.events if e["seq"] >= seqs[0]], seqs)

    @defer.inlineCallbacks
    def test_error_output_and_outputs_history(self):
        """An error output arrives; outputs(since=…) returns what came after, honestly."""
        kernel = yield self.start_kernel()
        result = yield self.call(kernel["id"], "execute", "raise ValueError('bad')")
        final = result.kwresults
        self.assertEqual(final["status"], "error")
        error = [o for o in final["outputs"] if o["msg_type"] == "error"][0]
        self.assertEqual(error["content"]["ename"], "ValueError")
        first = final["outputs"][0]["seq"]
        history = (yield self.call(kernel["id"], "outputs", since=first - 1)).kwresults
        self.assertTrue(history["complete"])
        self.assertEqual([o["seq"] for o in history["outputs"]][:len(final["outputs"])],
                         [o["seq"] for o in final["outputs"]])

    @defer.inlineCallbacks
    def test_complete_inspect_is_complete_history_kernel_info(self):
        """The shell requests answer with their Jupyter reply content."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        yield self.call(kid, "eval_cell", "import os")
        self.assertIn("import", (yield self.call(kid, "complete", "impo"))["matches"])
        inspected = yield self.call(kid, "inspect", "os.path.join", cursor_pos=7)
        self.assertTrue(inspected["found"])
        self.assertEqual((yield self.call(kid, "is_complete", "for i in x:"))["status"], "incomplete")
        history = yield self.call(kid, "history", hist_access_type="tail", n=5)
        self.assertIn("import os", [entry[2] for entry in history["history"]])
        self.assertEqual((yield self.call(kid, "kernel_info"))["language_info"]["name"], "python")


ECHO_TARGET = """\
def _echo(comm, opened):
    comm.send({'opened_with': opened['content']['data']})
    comm.on_msg(lambda msg: comm.send({'echo': msg['content']['data'],
                                       'buffers': [bytes(b).hex() for b in msg['buffers']]}))
get_ipython().kernel.comm_manager.register_target('webkernel.echo', _echo)"""


class CommTests(KernelTestCase):
    """Comms (what widgets speak): opened, messaged and closed from a WAMP client."""

    @defer.inlineCallbacks
    def test_comm_open_message_info_close(self):
        """A kernel-side target answers comm_open and comm_msg on iopub (as progress and on the
        topic); comm_info lists the comm; comm_close ends it."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        yield self.call(kid, "eval_cell", ECHO_TARGET)
        watcher = yield self.watch(kid)
        opened = yield self.call(kid, "comm", "comm_open",
                                 {"comm_id": "c1", "target_name": "webkernel.echo",
                                  "data": {"hello": 1}})
        opened = opened.kwresults
        said = [o["content"]["data"] for o in opened["outputs"] if o["msg_type"] == "comm_msg"]
        self.assertEqual(said, [{"opened_with": {"hello": 1}}])
        self.assertEqual(opened["outputs"][-1]["content"]["execution_state"], "idle")
        progress = []
        answer = yield self.call(kid, "comm", "comm_msg", {"comm_id": "c1", "data": {"n": 2}},
                                 buffers=[b"\x00\xff"],
                                 options=CallOptions(on_progress=lambda **o: progress.append(o)))
        answer = answer.kwresults
        echoed = [o["content"]["data"] for o in answer["outputs"] if o["msg_type"] == "comm_msg"]
        self.assertEqual(echoed, [{"echo": {"n": 2}, "buffers": ["00ff"]}])
        self.assertEqual([o["seq"] for o in progress], [o["seq"] for o in answer["outputs"]])
        on_topic = yield watcher.until(lambda e: e["msg_type"] == "comm_msg"
                                       and "echo" in e["content"]["data"])
        self.assertEqual(on_topic["parent_msg_id"], answer["msg_id"])
        info = yield self.call(kid, "comm_info", target_name="webkernel.echo")
        self.assertEqual(info["comms"], {"c1": {"target_name": "webkernel.echo"}})
        yield self.call(kid, "comm", "comm_close", {"comm_id": "c1", "data": {}})
        self.assertEqual((yield self.call(kid, "comm_info"))["comms"], {})
        self.assertEqual((yield self.call(kid, "eval_cell", "1+1")), "2")


class InputAndInterruptTests(KernelTestCase):
    """input(), interrupt, timeout and cancel."""

    @defer.inlineCallbacks
    def test_input_request_answered_by_input(self):
        """input() arrives as a progressive input_request and on the stdin topic; input answers it."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        stdin = Collector()
        yield self.client.subscribe(stdin, f"webkernel.kernel.{kid}.stdin")
        asked = defer.Deferred()

        def on_progress(**output):
            if output["msg_type"] == "input_request" and not asked.called:
                asked.callback(output)
        running = self.call(kid, "execute", "name = input('who? ')\nprint('hi', name)",
                            options=CallOptions(on_progress=on_progress))
        request = yield asked.addTimeout(TIMEOUT, reactor)
        self.assertEqual(request["content"]["prompt"], "who? ")
        self.assertFalse(request["content"]["password"])
        yield stdin.until(lambda e: e["msg_type"] == "input_request")
        yield self.call(kid, "input", "ada")
        final = (yield running).kwresults
        texts = [o["content"]["text"] for o in final["outputs"] if o["msg_type"] == "stream"]
        self.assertIn("hi ada\n", texts)
        error = yield self.assertFailure(self.call(kid, "input", "late"), ApplicationError)
        self.assertEqual(error.error, "webkernel.error.no_pending_input")

    @defer.inlineCallbacks
    def test_interrupt_infinite_loop(self):
        """interrupt stops `while True: pass` with KeyboardInterrupt; the kernel keeps its state."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        yield self.call(kid, "eval_cell", "kept = 1")
        watcher = yield self.watch(kid)
        running = self.call(kid, "execute", "print('looping', flush=True)\nwhile True: pass")
        yield watcher.until(lambda e: e["msg_type"] == "stream")  # surely inside the cell now
        yield self.call(kid, "interrupt")
        final = (yield running).kwresults
        self.assertEqual(final["reply"]["ename"], "KeyboardInterrupt")
        self.assertEqual((yield self.call(kid, "eval_cell", "kept")), "1")

    @defer.inlineCallbacks
    def test_call_timeout_interrupts_kernel(self):
        """A WAMP call timeout fails the call with wamp.error.timeout and interrupts the kernel."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        watcher = yield self.watch(kid)
        error = yield self.assertFailure(
            self.call(kid, "execute", "while True: pass", options=CallOptions(timeout=1000)),
            ApplicationError)
        self.assertEqual(error.error, "wamp.error.timeout")
        interrupted = yield watcher.until(lambda e: e["msg_type"] == "error"
                                          and e["content"]["ename"] == "KeyboardInterrupt")
        # the kernel aborts requests that reach it before it is idle again after the error
        yield watcher.until(lambda e: e["msg_type"] == "status"
                            and e["content"]["execution_state"] == "idle"
                            and e["parent_msg_id"] == interrupted["parent_msg_id"])
        self.assertEqual((yield self.call(kid, "eval_cell", "1+1")), "2")


class LifecycleTests(KernelTestCase):
    """Starting, listing, crashing, restarting, shutting down; errors."""

    @defer.inlineCallbacks
    def test_crash_is_reported_and_kernel_restarts_with_same_id(self):
        """os._exit(1) fails the call with kernel_died; watchers see dead, restarting, restarted."""
        events = Collector()
        yield self.client.subscribe(events, "webkernel.kernels.events")
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        watcher = yield self.watch(kid)
        error = yield self.assertFailure(self.call(kid, "execute", "import os; os._exit(1)"),
                                         ApplicationError)
        self.assertEqual(error.error, "webkernel.error.kernel_died")
        for name in ("dead", "restarting", "restarted"):
            event = yield events.until(lambda e, n=name: e["event"] == n and e["kernel"]["id"] == kid,
                                       timeout=KERNEL_TIMEOUT)
        self.assertEqual(event["kernel"]["id"], kid)
        dead = yield watcher.until(lambda e: e["content"].get("execution_state") == "dead")
        self.assertIn("exited", dead["content"]["reason"])
        self.assertEqual((yield self.call(kid, "eval_cell", "3*3")), "9")

    @defer.inlineCallbacks
    def test_start_without_waiting(self):
        """wait=False answers at once in state starting; 'ready' follows on the events topic."""
        events = Collector()
        yield self.client.subscribe(events, "webkernel.kernels.events")
        model = yield self.start_kernel(wait=False)
        self.assertEqual(model["execution_state"], "starting")
        ready = yield events.until(lambda e: e["event"] == "ready" and e["kernel"]["id"] == model["id"],
                                   timeout=KERNEL_TIMEOUT)
        self.assertIn(ready["kernel"]["execution_state"], ("idle", "busy"))
        self.assertEqual((yield self.call(model["id"], "eval_cell", "'ok'")), "'ok'")

    @defer.inlineCallbacks
    def test_restart_clears_state_keeps_id(self):
        """restart gives a fresh kernel under the same id."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        yield self.call(kid, "eval_cell", "x = 5")
        model = yield self.call(kid, "restart")
        self.assertEqual(model["id"], kid)
        error = yield self.assertFailure(self.call(kid, "eval_cell", "x"), ApplicationError)
        self.assertEqual(error.kwargs["ename"], "NameError")

    @defer.inlineCallbacks
    def test_shutdown_removes_kernel_and_files(self):
        """shutdown stops the process, removes its connection file and its procedures."""
        kernel = yield self.start_kernel()
        kid = kernel["id"]
        connection_file = os.path.join(self.kernel_dir, f"kernel-{kid}.json")
        self.assertEqual(stat.S_IMODE(os.stat(connection_file).st_mode), 0o600)
        yield self.call(kid, "shutdown")
        self.assertFalse(os.path.exists(connection_file))
        self.assertNotIn(kid, [k["id"] for k in (yield self.client.call("webkernel.kernels.list"))])
        error = yield self.assertFailure(self.call(kid, "eval_cell", "1"), ApplicationError)
        self.assertEqual(error.error, "webkernel.error.no_such_kernel")

    @defer.inlineCallbacks
    def test_errors(self):
        """Unknown kernelspec, unknown kernel and a bad argument each get their documented error."""
        error = yield self.assertFailure(
            self.client.call("webkernel.kernels.start", kernel_name="cobol"), ApplicationError)
        self.assertEqual(error.error, "webkernel.error.no_such_kernelspec")
        self.assertIn("python3", error.args[0])
        error = yield self.assertFailure(
            self.client.call(kernel_uri("0" * 32, "execute"), "1"), ApplicationError)
        self.assertEqual(error.error, "webkernel.error.no_such_kernel")
        kernel = yield self.start_kernel()
        error = yield self.assertFailure(self.call(kernel["id"], "eval_cell", 42), ApplicationError)
        self.assertEqual(error.error, "wamp.error.invalid_argument")

    @defer.inlineCallbacks
    def test_many_kernels_and_many_watchers(self):
        """Three kernels run at once, isolated; ten watchers of one kernel all see its output."""
        kernels = yield defer.gatherResults([self.start_kernel() for _ in range(3)])
        ids = [k["id"] for k in kernels]
        yield defer.gatherResults([self.call(k, "eval_cell", f"v = {i}") for i, k in enumerate(ids)])
        values = yield defer.gatherResults([self.call(k, "eval_cell", "v") for k in ids])
        self.assertEqual(values, ["0", "1", "2"])
        sessions = yield defer.gatherResults([joined(self.service, realm=REALM) for _ in range(10)])
        watchers = yield defer.gatherResults([self.watch(ids[0], s) for s in sessions])
        result = yield self.call(ids[0], "execute", "for i in range(50): print(i, flush=True)")
        last = result.kwresults["outputs"][-1]["seq"]
        for watcher in watchers:
            yield watcher.until(lambda e: e["seq"] == last)
            text = "".join(e["content"]["text"] for e in watcher.events if e["msg_type"] == "stream")
            self.assertEqual(text, "".join(f"{i}\n" for i in range(50)))
        yield leave(*sessions)
