"""The gateway's REST API on a real ``twistd webkernel``, with urllib: what GatewayClient calls.

One service (subprocess, its token) for the module; each test starts and
shuts down its own kernel. Waits are bounded by HTTP timeouts.
"""

import base64
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request

import pytest
import websocket
from twisted.trial.unittest import SynchronousTestCase

from broker.gateway import wire

from broker.users import store
from tests.service import ServicePerClass, ServiceProcess

pytestmark = pytest.mark.integration
WAIT = 60
DASHED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LAST_ACTIVITY = "%Y-%m-%dT%H:%M:%S.%fZ"


class GatewayRestTests(ServicePerClass, SynchronousTestCase):
    """Kernel Gateway's REST contract, as jupyter_server's GatewayClient uses it."""

    kernel_dir_prefix = "webkernel-gateway-"
    service_options = ("--max-kernels", "4")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = f"http://127.0.0.1:{cls.service.port}"

    def request(self, method, path, body=None, token=True, content_type="application/json"):
        """``(status, decoded JSON or raw bytes, headers)`` of one request."""
        headers = {"Authorization": f"token {self.service.token}"} if token else {}
        data = None if body is None else json.dumps(body).encode()
        if data is not None and content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as response:
                status, raw, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as e:
            status, raw, got = e.code, e.read(), e.headers
        kind = got.get("Content-Type", "")
        return status, json.loads(raw) if kind.startswith("application/json") else raw, got

    def start(self, **body):
        status, model, headers = self.request("POST", "/api/kernels", body)
        self.assertEqual(status, 201, model)
        self.addCleanup(self.request, "DELETE", f"/api/kernels/{model['id']}")
        return model, headers

    def test_kernelspecs(self):
        """Every kernelspec has name, spec and resources; the logo is served; an unknown one is 404."""
        status, listing, _ = self.request("GET", "/api/kernelspecs")
        self.assertEqual(status, 200)
        self.assertIn(listing["default"], listing["kernelspecs"])
        for name, entry in listing["kernelspecs"].items():
            self.assertEqual(set(entry), {"name", "spec", "resources"})
        python = listing["kernelspecs"]["python3"]
        self.assertEqual(self.request("GET", "/api/kernelspecs/python3")[1], python)
        logo = python["resources"]["logo-64x64"]
        status, data, headers = self.request("GET", logo)
        self.assertEqual((status, headers["Content-Type"], data[:4]), (200, "image/png", b"\x89PNG"))
        self.assertEqual(self.request("GET", "/kernelspecs/python3/kernel.json")[0], 404)
        self.assertEqual(self.request("GET", "/api/kernelspecs/nope")[0], 404)

    def test_kernel_lifecycle(self):
        """POST answers 201 with a ready kernel's model; GET, interrupt, restart, DELETE, then 404."""
        model, headers = self.start(name="python3", env={"KERNEL_USERNAME": "someone-else"})
        self.assertRegex(model["id"], DASHED)
        self.assertEqual(headers["Location"], f"/api/kernels/{model['id']}")
        self.assertEqual((model["name"], model["execution_state"], model["connections"]),
                         ("python3", "idle", 0))
        import datetime
        datetime.datetime.strptime(model["last_activity"], LAST_ACTIVITY)  # as GatewayClient parses it
        path = f"/api/kernels/{model['id']}"
        self.assertIn(model["id"], [m["id"] for m in self.request("GET", "/api/kernels")[1]])
        self.assertEqual(self.request("GET", path)[1]["id"], model["id"])
        self.assertEqual(self.request("POST", path + "/interrupt", {})[0], 204)
        status, restarted, _ = self.request("POST", path + "/restart", {})
        self.assertEqual((status, restarted["id"]), (200, model["id"]))
        self.assertEqual(self.request("DELETE", path)[0], 204)
        self.assertEqual(self.request("GET", path)[0], 404)
        self.assertEqual(self.request("DELETE", path)[0], 404)
        self.assertEqual(self.request("POST", path + "/interrupt", {})[0], 404)

    def test_v1_subprotocol(self):
        """A client offering v1.kernel.websocket.jupyter.org gets it: binary frames both ways."""
        model, _ = self.start()
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{self.service.port}/api/kernels/{model['id']}/channels",
            header=[f"Authorization: token {self.service.token}"],
            subprotocols=[wire.V1_PROTOCOL], timeout=WAIT)
        self.addCleanup(ws.close)
        self.assertEqual(ws.getsubprotocol(), wire.V1_PROTOCOL)
        request = wire.make("shell", "kernel_info_request", {}, {}, "client")
        ws.send_binary(wire.encode_v1(request))
        while True:
            opcode, frame = ws.recv_data()
            self.assertEqual(opcode, websocket.ABNF.OPCODE_BINARY)
            msg = wire.decode_v1(frame)
            if msg["header"]["msg_type"] == "kernel_info_reply":
                break
        self.assertEqual((msg["channel"], msg["parent_header"]["msg_id"], msg["content"]["status"]),
                         ("shell", request["msg_id"], "ok"))

    def test_refusals(self):
        """No token is 401; a POST not in JSON 415; a bad body 400; an unknown kernelspec 404; bad ids 404."""
        self.assertEqual(self.request("GET", "/api/kernels", token=False)[0], 401)
        self.assertEqual(self.request("POST", "/api/kernels", {}, content_type="text/plain")[0], 415)
        self.assertEqual(self.request("POST", "/api/kernels", {"env": []})[0], 400)
        status, body, _ = self.request("POST", "/api/kernels", {"name": "nope"})
        self.assertEqual((status, body["reason"]), (404, "webkernel.error.no_such_kernelspec"))
        self.assertEqual(self.request("GET", "/api/kernels/not-a-kernel")[0], 404)
        self.assertEqual(self.request("PUT", "/api/kernels", {})[0], 405)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class GatewayUsersTests(SynchronousTestCase):
    """Multi-user mode: each request is a user (HTTP Basic) and the kernels are theirs."""

    PASSWORDS = {"alice": "alice password", "bob": "bob password"}

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="webkernel-gateway-users-")
        users_file = os.path.join(cls.directory, "users.json")
        store.save(users_file, {n: store.User.create(n, "student", p, iterations=10)
                                for n, p in cls.PASSWORDS.items()})
        cls.service = ServiceProcess("--users", users_file, "--kernel-dir",
                                     os.path.join(cls.directory, "kernels"),
                                     "--unsafe-shared-account", "--home-root",
                                     os.path.join(cls.directory, "homes"), "--max-kernels", "4")
        cls.base = f"http://127.0.0.1:{cls.service.port}"

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()
        shutil.rmtree(cls.directory, ignore_errors=True)

    def request(self, method, path, authorization, body=None):
        headers = {"Authorization": authorization}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        return status, json.loads(raw) if raw.strip() else None

    def test_kernels_belong_to_who_signed_in(self):
        """alice's kernel is alice's whatever KERNEL_USERNAME says: bob neither sees, stops nor connects to it."""
        alice, bob = (basic(n, p) for n, p in self.PASSWORDS.items())
        status, model = self.request("POST", "/api/kernels", alice,
                                     {"name": "python3", "env": {"KERNEL_USERNAME": "bob"}})
        self.assertEqual(status, 201, model)
        path = f"/api/kernels/{model['id']}"
        self.addCleanup(self.request, "DELETE", path, alice)
        self.assertEqual(self.request("GET", path, alice)[0], 200)
        self.assertNotIn(model["id"], [m["id"] for m in self.request("GET", "/api/kernels", bob)[1]])
        self.assertEqual(self.request("GET", path, bob)[0], 404)
        self.assertIn(self.request("DELETE", path, bob)[0], (403, 404))
        self.assertEqual(self.request("GET", path, alice)[0], 200)
        channels = f"ws://127.0.0.1:{self.service.port}{path}/channels"
        with self.assertRaises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(channels, header=[f"Authorization: {bob}"], timeout=WAIT)
        self.assertEqual(refused.exception.status_code, 404)
        websocket.create_connection(channels, header=[f"Authorization: {alice}"], timeout=WAIT).close()

    def test_who_may_not_sign_in(self):
        """A wrong password, a token (none admits anyone here) and the kernel host's authid are 401."""
        self.assertEqual(self.request("GET", "/api/kernels", basic("alice", "wrong"))[0], 401)
        self.assertEqual(self.request("GET", "/api/kernels", "token anything")[0], 401)
        self.assertEqual(self.request("GET", "/api/kernels", basic("webkernel_host", "x"))[0], 401)
