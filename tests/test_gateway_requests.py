"""A kernel WebSocket's Jupyter requests and the kernel's outputs, translated, on fakes (no service, no kernel)."""

import json

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from broker.client.errors import KernelNotReady
from broker.gateway import requests
from broker.gateway.channels import KernelSocket
from broker.gateway.replay import SessionTrail

KERNEL = "ab" * 16


class FakeClient:
    """Records calls; each answers with a Deferred the test fires."""

    def __init__(self):
        self.calls = []

    def call(self, procedure, *args, **kwargs):
        d = defer.Deferred()
        self.calls.append((procedure.rsplit(".", 1)[1], kwargs, d))
        return d


class FakeSession:
    _session_id = 7


def socket():
    """A KernelSocket with fakes for its transport side: what it sends is recorded."""
    s = KernelSocket()
    s.kernel_id, s.live, s.trail, s.client, s.wamp = KERNEL, True, SessionTrail(), FakeClient(), FakeSession()
    s.live_held = None
    s.sent = []

    def send_jupyter(channel, msg_type, content, parent, metadata=None, buffers=None):
        s.sent.append((channel, msg_type, content, parent.get("msg_id")))
        return True
    s.send_jupyter = send_jupyter
    return s


def request(msg_type, content=None, channel="shell", msg_id="client-1"):
    return {"header": {"msg_id": msg_id, "msg_type": msg_type}, "content": content or {},
            "channel": channel}


def output(msg_type, parent, seq, session=7, content=None):
    return {"seq": seq, "msg_type": msg_type, "content": content or {}, "metadata": {},
            "parent_msg_id": parent, "caller": {"session": session}}


class RequestTests(SynchronousTestCase):
    """Each request becomes its call; each answer is addressed to the client's request."""

    def test_execute(self):
        """Progress outputs and the reply carry the client's msg_id; the kernel's is remembered."""
        s = socket()
        requests.handle(s, request("execute_request", {"code": "2+3", "silent": False, "bogus": 1}))
        name, kwargs, d = s.client.calls[0]
        self.assertEqual((name, kwargs["code"], kwargs["allow_stdin"], "bogus" in kwargs),
                         ("execute", "2+3", True, False))
        kwargs["on_progress"](**output("execute_result", "kernel-1", 3, content={"data": {}}))
        self.assertEqual(s.trail.parent_of("kernel-1")["msg_id"], "client-1")
        d.callback({"reply": {"status": "ok"}, "msg_id": "kernel-1"})
        self.assertEqual(s.sent, [("iopub", "execute_result", {"data": {}}, "client-1"),
                                  ("shell", "execute_reply", {"status": "ok"}, "client-1")])
        self.assertEqual(list(s.trail.unanswered), [])

    def test_a_failed_call_is_an_error_reply(self):
        """A WAMP error becomes a reply with status error and the URI as ename."""
        s = socket()
        requests.handle(s, request("complete_request", {"code": "im", "cursor_pos": 2}))
        s.client.calls[0][2].errback(KernelNotReady("starting", "webkernel.error.kernel_not_ready"))
        (channel, msg_type, content, parent), = s.sent
        self.assertEqual((channel, msg_type, content["status"], content["ename"], parent),
                         ("shell", "complete_reply", "error", "webkernel.error.kernel_not_ready",
                          "client-1"))

    def test_unsupported(self):
        """A request with no call gets an error reply, and no call is made."""
        s = socket()
        requests.handle(s, request("debug_request", channel="control"))
        self.assertEqual([(c, t, content["status"]) for c, t, content, _ in s.sent],
                         [("control", "debug_reply", "error")])
        self.assertEqual(s.client.calls, [])

    def test_comm_messages(self):
        """comm_msg is the comm call (content, metadata, binary buffers); the kernel's answer is
        addressed to it; no reply. comm_info_request asks the kernel."""
        s = socket()
        msg = request("comm_msg", {"comm_id": "c1", "data": {"method": "update"}})
        msg.update(metadata={"version": "2.1.0"}, buffers=[memoryview(b"\x01"), "not binary"])
        requests.handle(s, msg)
        name, kwargs, d = s.client.calls[0]
        self.assertEqual((name, kwargs["msg_type"], kwargs["content"], kwargs["metadata"],
                          kwargs["buffers"]),
                         ("comm", "comm_msg", msg["content"], {"version": "2.1.0"}, [b"\x01"]))
        kwargs["on_progress"](**output("comm_msg", "kernel-9", 4, content={"comm_id": "c1"}))
        self.assertEqual(s.trail.parent_of("kernel-9")["msg_id"], "client-1")
        d.callback({"msg_id": "kernel-9", "outputs": []})
        self.assertEqual(s.sent, [("iopub", "comm_msg", {"comm_id": "c1"}, "client-1")])
        requests.handle(s, request("comm_info_request", {"target_name": "jupyter.widget"},
                                   msg_id="client-2"))
        name, kwargs, d = s.client.calls[1]
        self.assertEqual((name, kwargs["target_name"]), ("comm_info", "jupyter.widget"))
        d.callback({"status": "ok", "comms": {"c1": {"target_name": "jupyter.widget"}}})
        self.assertEqual(s.sent[-1][:2] + (s.sent[-1][3],), ("shell", "comm_info_reply", "client-2"))

    def test_input_interrupt_shutdown(self):
        """input_reply calls input; interrupt and shutdown(restart) call theirs and reply."""
        s = socket()
        requests.handle(s, request("input_reply", {"value": "yes"}, channel="stdin"))
        requests.handle(s, request("interrupt_request", channel="control", msg_id="c2"))
        requests.handle(s, request("shutdown_request", {"restart": True}, channel="control", msg_id="c3"))
        self.assertEqual([(n, k) for n, k, _ in s.client.calls],
                         [("input", {"value": "yes", "timeout": 0}), ("interrupt", {"timeout": 0}),
                          ("restart", {"timeout": 0})])
        for _, _, d in s.client.calls:
            d.callback(None)
        self.assertEqual([(t, p) for _, t, _, p in s.sent],
                         [("interrupt_reply", "c2"), ("shutdown_reply", "c3")])


class TopicTests(SynchronousTestCase):
    """Which of the kernel's topic events a socket relays."""

    def setUp(self):
        self.s = socket()
        self.relayed = []
        self.s.send_output = lambda out, parent: self.relayed.append((out["msg_type"], parent))

    def test_own_execution_only_from_progress(self):
        """An own execution's outputs and status on the topic are not relayed (progress brings them in order)."""
        self.s.trail.remember("kernel-1", {"msg_id": "client-1"})
        self.s._topic_output(**output("stream", "kernel-1", 4))
        self.s._topic_output(**output("status", "kernel-1", 5, content={"execution_state": "idle"}))
        self.assertEqual(self.relayed, [])

    def test_others_and_own_other_status(self):
        """Other sessions' outputs and the status of own non-execute requests are relayed."""
        self.s._topic_output(**output("stream", "kernel-9", 4, session=8))
        self.s._topic_output(**output("status", "kernel-2", 5))
        self.s._topic_output(**output("stream", "kernel-2", 6))
        self.assertEqual(self.relayed, [("stream", {"msg_id": "kernel-9"}),
                                        ("status", {"msg_id": "kernel-2"})])


class FrameLimitTests(SynchronousTestCase):
    """No frame over 10 MiB goes to the client: a larger output becomes a notice naming its seq."""

    def test_large_output_becomes_a_notice(self):
        """An 11 MiB stream is replaced by a stderr stream naming seq 9; a small one goes as it is."""
        s = socket()
        del s.send_jupyter   # the real one, into a recording queue
        frames = []
        s.v1, s.jupyter_session = False, "gateway-session"
        s.queue = type("Queue", (), {"send": lambda self, frame, binary: frames.append(frame)})()
        s.send_output(output("stream", "k", 9, content={"name": "stdout", "text": "x" * (11 << 20)}),
                      {"msg_id": "client-1"})
        s.send_output(output("stream", "k", 10, content={"name": "stdout", "text": "small"}),
                      {"msg_id": "client-1"})
        sent = [json.loads(f) for f in frames]
        self.assertEqual([(m["content"]["name"], m["parent_header"]["msg_id"]) for m in sent],
                         [("stderr", "client-1"), ("stdout", "client-1")])
        self.assertIn("at seq 9", sent[0]["content"]["text"])
        self.assertEqual(s.trail.last_seq, 10)


class OutputWidgetIdTests(SynchronousTestCase):
    """An Output widget's msg_id in comm state: the client's id out, the kernel's in."""

    def setUp(self):
        from broker.gateway import comms
        self.comms = comms
        self.trail = SessionTrail()
        self.trail.remember("kernel-1", {"msg_id": "client-1", "msg_type": "execute_request"})

    def test_to_client(self):
        """A known kernel id becomes the client's; a copy is made; other messages and ids stay."""
        content = {"comm_id": "c", "data": {"method": "update", "state": {"msg_id": "kernel-1"},
                                            "buffer_paths": []}}
        seen = self.comms.to_client("comm_msg", content, self.trail)
        self.assertEqual(seen["data"]["state"], {"msg_id": "client-1"})
        self.assertEqual(seen["data"]["buffer_paths"], [])
        self.assertEqual(content["data"]["state"]["msg_id"], "kernel-1", "the output is shared")
        unknown = {"comm_id": "c", "data": {"state": {"msg_id": "another-clients"}}}
        self.assertIs(self.comms.to_client("comm_msg", unknown, self.trail), unknown)
        self.assertIs(self.comms.to_client("stream", content, self.trail), content)
        cleared = {"comm_id": "c", "data": {"state": {"msg_id": ""}}}
        self.assertIs(self.comms.to_client("comm_msg", cleared, self.trail), cleared)

    def test_to_kernel(self):
        """A client id the trail knows becomes the kernel's; anything else is left."""
        content = {"comm_id": "c", "data": {"method": "update", "state": {"msg_id": "client-1"}}}
        self.assertEqual(self.comms.to_kernel(content, self.trail)["data"]["state"]["msg_id"],
                         "kernel-1")
        for other in ({"comm_id": "c", "data": {"state": {"value": 3}}}, {"comm_id": "c"},
                      {"comm_id": "c", "data": {"state": {"msg_id": "unknown"}}}):
            self.assertIs(self.comms.to_kernel(other, self.trail), other)
