"""
Clients of the kernel benchmark, on Twisted: webkernel over WAMP, Jupyter Server over its
kernel WebSocket (the cells they run and the counting of lines are in ``kernel_cells.py``).

``WebkernelKernel`` drives one webkernel kernel through a WAMP session
(``wamp_client.connect_session``): ``execute`` is the ``webkernel.kernel.<id>.execute``
call, with the output messages as progressive results when asked.

``JupyterKernel`` drives one Jupyter Server kernel through one WebSocket on
``/api/kernels/<id>/channels`` speaking the standard JSON Jupyter messages (no
subprotocol: each frame is one message as JSON text, with its ``channel``); an
execution is finished once its ``execute_reply`` and its ``status: idle`` have
arrived.  ``jupyter_rest`` makes the REST calls (create and delete kernels).

Both are used by the driver (``kernel_bench.py``) and by the watcher processes of
the fan-out (``kernel_worker.py``), so every system is measured with the same code.
"""

import io
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlparse

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.wamp.types import CallOptions
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from kernel_cells import (
    KERNEL_NAME, LATENCY_CODE, WEBKERNEL_REALM, ExecutionFailed, LineCounter,
    check_latency_result, stream_code,
)
from wamp_client import close_sessions, connect_session



# -- webkernel (WAMP) ---------------------------------------------------------------


class WebkernelKernel:
    """One kernel of a webkernel service, driven over one WAMP session."""

    def __init__(self, session, kernel_id):
        self.session = session
        self.id = kernel_id

    @classmethod
    async def start(cls, reactor, url, serializer="json", timeout=60.0):
        """Join the realm, start a ``python3`` kernel and wait until it is ready."""
        session = await connect_session(reactor, url, WEBKERNEL_REALM, serializer)
        try:
            model = await session.call("webkernel.kernels.start", kernel_name=KERNEL_NAME) \
                .addTimeout(timeout, reactor)
        except BaseException:
            await close_sessions(reactor, [session])
            raise
        return cls(session, model["id"])

    def procedure(self, name):
        return f"webkernel.kernel.{self.id}.{name}"

    @property
    def iopub_prefix(self):
        return f"webkernel.kernel.{self.id}.iopub"

    async def execute(self, code, on_output=None):
        """Run ``code``; the final result's kwargs.  ``on_output(msg_type, content)`` per progress."""
        options = None
        if on_output is not None:
            options = CallOptions(
                on_progress=lambda *args, **output: on_output(output["msg_type"], output["content"]))
        result = await self.session.call(self.procedure("execute"), code=code, options=options)
        return result.kwresults

    async def run_latency(self):
        """One ``1+1`` round trip: seconds until the final result is in hand."""
        start = time.perf_counter()
        result = await self.execute(LATENCY_CODE)
        elapsed = time.perf_counter() - start
        check_latency_result(result["status"],
                             [(o["msg_type"], o["content"]) for o in result["outputs"]])
        return elapsed

    async def run_stream(self, lines):
        """Run the stream cell with progressive results; (counter, start, done_at) in monotonic time."""
        counter = LineCounter(lines)
        start = time.monotonic()
        result = await self.execute(stream_code(lines), on_output=counter.feed_output)
        done_at = time.monotonic()
        if result["status"] != "ok":
            raise ExecutionFailed(f"stream cell: status {result['status']!r}")
        return counter, start, done_at

    async def run_cell(self, code):
        """Run ``code`` without progress; return once its final result is in hand."""
        result = await self.execute(code)
        if result["status"] != "ok":
            raise ExecutionFailed(f"cell: status {result['status']!r}")

    async def close(self, reactor, shutdown=True):
        try:
            if shutdown and self.session.is_attached():
                await self.session.call(self.procedure("shutdown")).addTimeout(30, reactor)
        finally:
            await close_sessions(reactor, [self.session])


# -- Jupyter Server (REST + kernel WebSocket) ------------------------------------------


class HTTPError(Exception):
    pass


async def jupyter_rest(reactor, method, url, token, body=None, timeout=10.0):
    """One REST call to Jupyter Server with its token; the decoded JSON answer (or None)."""
    headers = Headers({b"Authorization": [f"token {token}".encode()],
                       b"Content-Type": [b"application/json"]})
    producer = None if body is None else FileBodyProducer(io.BytesIO(json.dumps(body).encode()))
    agent = Agent(reactor, connectTimeout=timeout)
    response = await agent.request(method.encode(), url.encode(), headers, producer) \
        .addTimeout(timeout, reactor)
    data = await readBody(response).addTimeout(timeout, reactor)
    if response.code >= 400:
        raise HTTPError(f"{method} {url}: HTTP {response.code}: {data[:300]!r}")
    return json.loads(data) if data else None


class JupyterChannels(WebSocketClientProtocol):
    """One kernel WebSocket: every message from the server goes to ``factory.on_message``."""

    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        if isBinary:  # only with the v1 subprotocol, which this client does not ask for
            return
        self.factory.on_message(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"WebSocket closed: {code} {reason}"))
        if not self.factory.closed.called:
            self.factory.closed.callback(None)


#: how long after its reply an execution's ``idle`` may lag before it counts as lost
IDLE_GRACE = 30.0


class _Pending:
    __slots__ = ("deferred", "reply", "reply_at", "idle", "outputs", "on_output", "grace")

    def __init__(self, on_output):
        self.deferred = Deferred()
        self.reply = None
        self.idle = False
        self.outputs = []
        self.on_output = on_output
        self.grace = None


class JupyterKernel:
    """One Jupyter Server kernel over one ``/api/kernels/<id>/channels`` WebSocket."""

    def __init__(self, base_url, token, kernel_id):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.id = kernel_id
        self.session_id = uuid.uuid4().hex
        self.protocol = None
        self.closed = None
        self.on_iopub = None  # called with every iopub message (watchers)
        self.reactor = None
        self.idles_lost = 0   # executions whose idle never came (see IDLE_GRACE)
        self.last_done_at = None
        self._pending = {}

    @classmethod
    async def create(cls, reactor, base_url, token):
        """Start a ``python3`` kernel with ``POST /api/kernels``; return its id."""
        model = await jupyter_rest(reactor, "POST", f"{base_url}/api/kernels", token,
                                   {"name": KERNEL_NAME}, timeout=60.0)
        return model["id"]

    @staticmethod
    async def delete(reactor, base_url, token, kernel_id):
        await jupyter_rest(reactor, "DELETE", f"{base_url}/api/kernels/{kernel_id}", token,
                           timeout=30.0)

    async def connect(self, reactor, timeout=30.0):
        """Open the WebSocket (the server has opened the kernel's ZeroMQ channels by then)."""
        self.reactor = reactor
        address = urlparse(self.base_url)
        url = (f"ws://{address.hostname}:{address.port}/api/kernels/{self.id}/channels"
               f"?session_id={self.session_id}")
        factory = WebSocketClientFactory(url, headers={"Authorization": f"token {self.token}"})
        factory.protocol = JupyterChannels
        # a server may answer the upgrade only once the kernel's channels are open (Kernel
        # Gateway does): Autobahn's default 5 s would fail a burst of starts on a slow peer
        factory.setProtocolOptions(openHandshakeTimeout=timeout)
        factory.opened, factory.closed = Deferred(), Deferred()
        factory.on_message = self._message
        self.closed = factory.closed
        endpoint = TCP4ClientEndpoint(reactor, address.hostname, address.port, timeout=timeout)
        await endpoint.connect(factory)
        self.protocol = await factory.opened.addTimeout(timeout, reactor)
        # The first request after connecting proves the channels work end to end.
        await self.request("shell", "kernel_info_request", {}).addTimeout(timeout, reactor)
        return self

    def send(self, channel, msg_type, content):
        msg_id = uuid.uuid4().hex
        message = {
            "header": {"msg_id": msg_id, "msg_type": msg_type, "username": "bench",
                       "session": self.session_id, "version": "5.3",
                       "date": datetime.now(timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "content": content,
            "buffers": [], "channel": channel,
        }
        self.protocol.sendMessage(json.dumps(message).encode(), isBinary=False)
        return msg_id

    def request(self, channel, msg_type, content, on_output=None):
        """Send a request; a Deferred of (reply, outputs) once the reply and ``idle`` are in."""
        msg_id = self.send(channel, msg_type, content)
        pending = self._pending[msg_id] = _Pending(on_output)
        return pending.deferred

    def _message(self, msg):
        if msg.get("channel") == "iopub" and self.on_iopub is not None:
            self.on_iopub(msg)
        parent_id = (msg.get("parent_header") or {}).get("msg_id")
        pending = self._pending.get(parent_id)
        if pending is None:
            return
        msg_type = msg["header"]["msg_type"]
        if msg.get("channel") == "iopub":
            pending.outputs.append((msg_type, msg["content"]))
            if pending.on_output is not None:
                pending.on_output(msg_type, msg["content"])
            if msg_type == "status" and msg["content"].get("execution_state") == "idle":
                pending.idle = True
        elif msg.get("channel") in ("shell", "control"):
            pending.reply = msg
            pending.reply_at = time.monotonic()
            if not pending.idle:
                # Jupyter Server can lose iopub messages, the idle among them (the
                # kernel's PUB socket drops what a slow subscriber has not taken):
                # give up on it IDLE_GRACE seconds after the reply.
                pending.grace = self.reactor.callLater(IDLE_GRACE, self._idle_lost, parent_id)
        if pending.reply is not None and pending.idle:
            self._finish(parent_id)

    def _idle_lost(self, parent_id):
        self.idles_lost += 1
        self._finish(parent_id)

    def _finish(self, parent_id):
        pending = self._pending.pop(parent_id)
        if pending.grace is not None and pending.grace.active():
            pending.grace.cancel()
        # an execution whose idle was lost was done when its reply came
        self.last_done_at = time.monotonic() if pending.idle else pending.reply_at
        pending.deferred.callback((pending.reply, pending.outputs))

    def execute(self, code, on_output=None):
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        return self.request("shell", "execute_request", content, on_output)

    async def run_latency(self):
        start = time.perf_counter()
        reply, outputs = await self.execute(LATENCY_CODE)
        elapsed = time.perf_counter() - start
        check_latency_result(reply["content"].get("status"), outputs)
        return elapsed

    async def run_stream(self, lines):
        counter = LineCounter(lines)
        start = time.monotonic()
        reply, _ = await self.execute(stream_code(lines), on_output=counter.feed_output)
        done_at = self.last_done_at
        if reply["content"].get("status") != "ok":
            raise ExecutionFailed(f"stream cell: status {reply['content'].get('status')!r}")
        return counter, start, done_at

    async def run_cell(self, code):
        reply, _ = await self.execute(code)
        if reply["content"].get("status") != "ok":
            raise ExecutionFailed(f"cell: status {reply['content'].get('status')!r}")

    async def close(self, reactor, timeout=5.0):
        if self.protocol is not None and not self.closed.called:
            self.protocol.sendClose()
            try:
                await self.closed.addTimeout(timeout, reactor)
            except Exception:
                self.protocol.dropConnection(abort=True)
