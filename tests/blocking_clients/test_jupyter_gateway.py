"""A real ``jupyter server --gateway-url`` runs its kernels on a real ``twistd webkernel``.

jupyter_server (PyPI) is driven through its own REST API and kernel
WebSocket (websocket-client), exactly as JupyterLab drives it; webkernel
sees it as a Kernel Gateway client. The same kernels are watched over WAMP
with the blocking client (crochet's reactor thread, hence this directory).
nbclient runs a notebook through that jupyter_server in a subprocess
(``tests/gateway_nbclient.py``) and must give what a local kernel gives.
Every wait is bounded (socket timeouts, the client's timeout); no sleeps.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest
import urllib.error
import urllib.request
import uuid

import nbformat
import pytest
import websocket

from broker.client import connect
from tests.jupyter_process import JupyterServerProcess
from tests.service import ROOT, ServicePerClass

WAIT = 60
pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")]  # inside crochet 2.1


def http(method, url, body=None, headers=None):
    """``(status, decoded JSON or None)`` of one request."""
    data = None if body is None else json.dumps(body).encode()
    headers = dict(headers or {}, **({"Content-Type": "application/json"} if data else {}))
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method),
                                    timeout=WAIT) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return status, json.loads(raw) if raw.strip() else None


class KernelSocket:
    """A Jupyter kernel WebSocket (legacy JSON protocol), as a frontend uses it."""

    def __init__(self, url, headers=()):
        self.ws = websocket.create_connection(url, header=list(headers), timeout=WAIT)
        self.session = uuid.uuid4().hex

    def send(self, msg_type, content, channel="shell"):
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": self.session,
                  "username": "test", "version": "5.3", "date": ""}
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                 "content": content, "channel": channel, "buffers": []}))
        return msg_id

    def receive(self):
        return json.loads(self.ws.recv())

    def until(self, predicate):
        """Messages received up to and including the first for which *predicate* is true."""
        seen = []
        while True:
            msg = self.receive()
            seen.append(msg)
            if predicate(msg):
                return seen

    def run(self, code, **content):
        """Execute *code*; ``(its messages up to idle and the reply, execute_reply content)``."""
        msg_id = self.send("execute_request", dict({"code": code, "silent": False}, **content))
        mine = []
        replied = idle = False
        while not (replied and idle):
            msg = self.receive()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            mine.append(msg)
            replied = replied or msg["msg_type"] == "execute_reply"
            idle = idle or (msg["msg_type"] == "status"
                            and msg["content"]["execution_state"] == "idle")
        reply = [m for m in mine if m["msg_type"] == "execute_reply"][0]
        return mine, reply["content"]

    def close(self):
        self.ws.close()


def stdout(messages):
    return "".join(m["content"]["text"] for m in messages
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def result(messages):
    return [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "execute_result"]


class JupyterServerGatewayTests(ServicePerClass, unittest.TestCase):
    """jupyter_server's GatewayClient, unchanged, with webkernel as its gateway."""

    kernel_dir_prefix = "webkernel-gateway-"
    service_options = ("--max-kernels", "6")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway = f"http://127.0.0.1:{cls.service.port}"
        try:
            cls.jupyter = JupyterServerProcess(cls.gateway, cls.service.token)
        except Exception:
            super().tearDownClass()
            raise
        cls.wamp = connect(cls.gateway + "/", token=cls.service.token, timeout=WAIT)

    @classmethod
    def tearDownClass(cls):
        cls.wamp.close()
        cls.jupyter.stop()
        super().tearDownClass()
        shutil.rmtree(cls.jupyter.home, ignore_errors=True)

    def start(self):
        """A kernel started through jupyter_server's REST API; its id."""
        status, model = http("POST", self.jupyter.url + "api/kernels", {"name": "python3"})
        self.assertEqual(status, 201, model)
        self.addCleanup(http, "DELETE", self.jupyter.url + f"api/kernels/{model['id']}")
        return model["id"]

    def channels(self, kernel_id):
        socket = KernelSocket(self.jupyter.url.replace("http", "ws", 1)
                              + f"api/kernels/{kernel_id}/channels")
        self.addCleanup(socket.close)
        return socket

    def test_execute_stream_and_the_same_kernel_over_wamp(self):
        """2+3 gives 5 and prints stream; the kernel is webkernel's: listed and watched over WAMP with seq."""
        kernel_id = self.start()
        wamp_kernel = self.wamp.kernel(kernel_id.replace("-", ""))
        self.assertIn(wamp_kernel.id, [m["id"] for m in self.wamp.kernels()])
        watched = []
        watch = wamp_kernel.watch(watched.append)
        self.addCleanup(watch.stop)
        socket = self.channels(kernel_id)
        messages, reply = socket.run("2+3")
        self.assertEqual((reply["status"], result(messages)), ("ok", ["5"]))
        messages, reply = socket.run("for i in range(3): print('line', i)")
        self.assertEqual(stdout(messages), "line 0\nline 1\nline 2\n")
        marker = wamp_kernel.eval_cell("'seen over wamp'")   # after both cells, in order
        self.assertEqual(marker, "'seen over wamp'")
        streams = [o for o in watched if o["msg_type"] == "stream"]
        self.assertEqual("".join(o["content"]["text"] for o in streams), "line 0\nline 1\nline 2\n")
        seqs = [o["seq"] for o in watched]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual([o["content"]["data"]["text/plain"] for o in watched
                          if o["msg_type"] == "execute_result"][:1], ["5"])
        status, models = http("GET", self.gateway + "/api/kernels",
                              headers={"Authorization": f"token {self.service.token}"})
        self.assertEqual([m["connections"] for m in models if m["id"] == kernel_id], [1])

    def test_input(self):
        """input() reaches the frontend as an input_request on stdin; its input_reply answers it."""
        socket = self.channels(self.start())
        msg_id = socket.send("execute_request", {"code": "name = input('name? ')\nprint('hello', name)",
                                                 "allow_stdin": True})
        request = socket.until(lambda m: m["msg_type"] == "input_request")[-1]
        self.assertEqual((request["channel"], request["content"]["prompt"]), ("stdin", "name? "))
        self.assertEqual(request["parent_header"]["msg_id"], msg_id)
        socket.send("input_reply", {"value": "world"}, channel="stdin")
        seen = socket.until(lambda m: m["msg_type"] == "execute_reply")
        self.assertEqual(stdout([m for m in seen if m["parent_header"].get("msg_id") == msg_id]),
                         "hello world\n")

    def test_interrupt_restart_shutdown(self):
        """REST interrupt stops a running cell, restart forgets names, DELETE removes the kernel everywhere."""
        kernel_id = self.start()
        socket = self.channels(kernel_id)
        socket.run("a = 1")
        msg_id = socket.send("execute_request", {"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(120)"})
        socket.until(lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)
        status, _ = http("POST", self.jupyter.url + f"api/kernels/{kernel_id}/interrupt", {})
        self.assertEqual(status, 204)
        reply = socket.until(lambda m: m["msg_type"] == "execute_reply")[-1]
        self.assertEqual((reply["content"]["status"], reply["content"]["ename"]),
                         ("error", "KeyboardInterrupt"))
        status, model = http("POST", self.jupyter.url + f"api/kernels/{kernel_id}/restart", {})
        self.assertEqual((status, model["id"]), (200, kernel_id))
        messages, reply = socket.run("'a' in dir()")
        self.assertEqual(result(messages), ["False"])
        status, _ = http("DELETE", self.jupyter.url + f"api/kernels/{kernel_id}")
        self.assertEqual(status, 204)
        self.assertNotIn(kernel_id.replace("-", ""), [m["id"] for m in self.wamp.kernels()])
        self.assertEqual(http("GET", self.jupyter.url + f"api/kernels/{kernel_id}")[0], 404)

    def test_unknown_kernel_is_404_at_the_handshake(self):
        """The gateway's kernel WebSocket refuses an id it has no kernel for with HTTP 404."""
        with self.assertRaises(websocket.WebSocketBadStatusException) as raised:
            websocket.create_connection(
                f"ws://127.0.0.1:{self.service.port}/api/kernels/{uuid.uuid4()}/channels",
                header=[f"Authorization: token {self.service.token}"], timeout=WAIT)
        self.assertEqual(raised.exception.status_code, 404)

    def test_reconnect_replays_what_the_session_missed(self):
        """A session_id back after a drop gets the outputs and the reply it missed, addressed to its request."""
        kernel_id = self.start()
        url = (f"ws://127.0.0.1:{self.service.port}/api/kernels/{kernel_id}/channels"
               f"?session_id={uuid.uuid4()}")
        headers = [f"Authorization: token {self.service.token}"]
        first = KernelSocket(url, headers)
        msg_id = first.send("execute_request", {"code": "v = input('go? ')\nprint('after', v)",
                                                "allow_stdin": True})
        first.until(lambda m: m["msg_type"] == "input_request")
        first.close()
        wamp_kernel = self.wamp.kernel(kernel_id.replace("-", ""))
        done = []
        watch = wamp_kernel.watch(done.append)
        self.addCleanup(watch.stop)
        wamp_kernel.input("yes")
        self.assertEqual(wamp_kernel.eval_cell("v"), "'yes'")   # the cell ran to its end meanwhile
        second = KernelSocket(url, headers)
        self.addCleanup(second.close)
        seen = second.until(lambda m: m["msg_type"] == "execute_reply")
        mine = [m for m in seen if m["parent_header"].get("msg_id") == msg_id]
        self.assertEqual(stdout(mine), "after yes\n")
        self.assertEqual(mine[-1]["content"]["status"], "ok")

    def test_nbclient_gives_what_a_local_kernel_gives(self):
        """nbclient through jupyter_server on webkernel's kernels and on a local kernel: the same outputs."""
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in (
            "2+3", "for i in range(3): print('line', i)",
            "import sys; print('to stderr', file=sys.stderr)",
            "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))",
            "1/0", "a = 'after the error'\na")]
        path = self.jupyter.path("cells.ipynb")
        nbformat.write(nb, str(path))
        runs = {}
        for mode in ("local", "gateway"):
            args = [mode] if mode == "local" else [mode, self.jupyter.url]
            done = subprocess.run([sys.executable, "-m", "tests.gateway_nbclient", str(path), *args],
                                  cwd=str(ROOT), capture_output=True, text=True, timeout=180,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertEqual(runs["gateway"], runs["local"])
        self.assertEqual(runs["gateway"][0][0]["data"]["text/plain"], "5")
