"""Unmodified Autobahn|Python (asyncio) applications against ``twistd webkernel``, feature by feature.

The service runs as a real subprocess (``--anonymous --realm realm1``); the
clients use real loopback sockets: WebSocket with JSON, MessagePack and CBOR,
RawSocket with JSON and MessagePack.
"""

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions

from tests.service import ServiceProcess
from tests.asyncio_clients.wamp_clients import TIMEOUT, joined, leave

TRANSPORTS = [("websocket", "json"), ("websocket", "msgpack"), ("websocket", "cbor"),
              ("rawsocket", "json"), ("rawsocket", "msgpack")]


@pytest.fixture(scope="module")
def service():
    running = ServiceProcess("--anonymous", "--realm", "realm1")
    yield running
    running.stop()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@pytest.mark.parametrize("transport,serializer", TRANSPORTS)
def test_rpc_and_pubsub_on_every_transport(service, transport, serializer):
    """RPC with args/kwargs and pub/sub work over each transport and serializer."""
    async def scenario():
        callee = await joined(service, transport, serializer)
        caller = await joined(service, transport, serializer)
        await callee.register(lambda a, b, scale=1: (a + b) * scale, "com.math.add")
        assert await caller.call("com.math.add", 2, 3, scale=10) == 50
        got = asyncio.get_running_loop().create_future()
        await callee.subscribe(lambda payload: got.set_result(payload), "com.news")
        await caller.publish("com.news", b"\x00bin" if serializer != "json" else "text",
                             options=PublishOptions(acknowledge=True))
        assert await asyncio.wait_for(got, TIMEOUT) in (b"\x00bin", "text")
        await leave(callee, caller)
    run(scenario())


def test_call_errors(service):
    """Application errors keep their URI, args and kwargs; standard errors are standard."""
    async def scenario():
        callee = await joined(service)
        caller = await joined(service)

        def fail():
            raise ApplicationError("com.example.error.bad", 1, reason="why")
        await callee.register(fail, "com.fail")
        with pytest.raises(ApplicationError) as caught:
            await caller.call("com.fail")
        assert (caught.value.error, caught.value.args, caught.value.kwargs) == (
            "com.example.error.bad", (1,), {"reason": "why"})
        with pytest.raises(ApplicationError) as caught:
            await caller.call("com.nobody.home")
        assert caught.value.error == "wamp.error.no_such_procedure"
        with pytest.raises(ApplicationError) as caught:
            await caller.register(lambda: None, "com.fail")
        assert caught.value.error == "wamp.error.procedure_already_exists"
        with pytest.raises(ApplicationError) as caught:
            await caller.register(lambda: None, "wamp.session.count")
        assert caught.value.error == "wamp.error.not_authorized"
        await leave(callee, caller)
    run(scenario())


def test_progressive_results_and_caller_disclosure(service):
    """Progressive results arrive in order before the final one; the callee sees the caller."""
    async def scenario():
        callee = await joined(service)
        caller = await joined(service, "rawsocket", "msgpack")
        seen = {}

        async def count(n, details=None):
            seen["caller"] = details.caller
            for i in range(n):
                details.progress(i)
            return "done"
        await callee.register(count, "com.count", options=RegisterOptions(details_arg="details"))
        progress = []
        result = await caller.call("com.count", 3, options=CallOptions(on_progress=progress.append))
        assert (progress, result) == ([0, 1, 2], "done")
        assert seen["caller"] == caller.details.session
        await leave(callee, caller)
    run(scenario())


def test_cancel_and_timeout_interrupt_callee(service):
    """Canceling or timing out a call fails it for the caller and cancels the callee's work."""
    async def scenario():
        callee = await joined(service)
        caller = await joined(service)
        interrupted = asyncio.Queue()
        started = asyncio.Queue()

        async def forever():
            started.put_nowait(True)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                interrupted.put_nowait(True)
                raise
        await callee.register(forever, "com.forever")
        call = asyncio.ensure_future(caller.call("com.forever"))
        await asyncio.wait_for(started.get(), TIMEOUT)
        call.cancel()
        with pytest.raises((asyncio.CancelledError, ApplicationError)):
            await call
        with pytest.raises(ApplicationError) as caught:
            await caller.call("com.forever", options=CallOptions(timeout=200))  # ms
        assert caught.value.error == "wamp.error.timeout"
        for _ in range(2):  # one for the cancel, one for the timeout
            assert await asyncio.wait_for(interrupted.get(), TIMEOUT)
        await leave(callee, caller)
    run(scenario())


def test_pubsub_patterns_exclusion_and_lists(service):
    """Prefix/wildcard subscriptions, publisher disclosure, exclude_me, black/whitelists."""
    async def scenario():
        pub = await joined(service, authid="pub")
        a = await joined(service, authid="a")
        b = await joined(service, "rawsocket", "json", authid="b")
        got = {"a": [], "b": [], "pub": []}

        def collect(name):
            def on_event(value, details=None):
                got[name].append((value, details.topic, details.publisher))
            return on_event
        await a.subscribe(collect("a"), "com.app", options=SubscribeOptions(match="prefix", details_arg="details"))
        await b.subscribe(collect("b"), "com..update", options=SubscribeOptions(match="wildcard", details_arg="details"))
        await pub.subscribe(collect("pub"), "com.app.update", options=SubscribeOptions(details_arg="details"))
        ack = PublishOptions(acknowledge=True)
        await pub.publish("com.app.update", 1, options=ack)
        await pub.publish("com.app.update", 2, options=PublishOptions(acknowledge=True, exclude_me=False))
        await pub.publish("com.app.update", 3, options=PublishOptions(acknowledge=True, exclude=[a.details.session]))
        await pub.publish("com.app.update", 4, options=PublishOptions(acknowledge=True, eligible_authid=["a"]))
        await pub.publish("com.app.update", 5, options=PublishOptions(acknowledge=True, exclude_authrole=["anonymous"]))
        # a round trip through each subscriber's session orders the events before it
        for session in (a, b):
            await session.call("wamp.session.count")
        assert [v for v, _, _ in got["a"]] == [1, 2, 4]
        assert [v for v, _, _ in got["b"]] == [1, 2, 3]
        assert [v for v, _, _ in got["pub"]] == [2]
        assert got["a"][0][1:] == ("com.app.update", pub.details.session)
        await leave(pub, a, b)
    run(scenario())


def test_shared_registrations(service):
    """roundrobin alternates; single refuses a second callee."""
    async def scenario():
        callees = [await joined(service) for _ in range(2)]
        caller = await joined(service)
        for index, callee in enumerate(callees):
            await callee.register(lambda index=index: index, "com.shared",
                                  options=RegisterOptions(invoke="roundrobin"))
        assert [await caller.call("com.shared") for _ in range(4)] == [0, 1, 0, 1]
        await leave(*callees, caller)
    run(scenario())


def test_meta_api(service):
    """Session meta API and on_join/on_leave events, registration and subscription reflection."""
    async def scenario():
        watcher = await joined(service, authid="watcher")
        events = asyncio.Queue()
        await watcher.subscribe(lambda *args: events.put_nowait(args), "wamp.session.on_join")
        await watcher.subscribe(lambda *args: events.put_nowait(args), "wamp.session.on_leave")
        other = await joined(service, authid="other")
        (info,) = await asyncio.wait_for(events.get(), TIMEOUT)
        assert info["session"] == other.details.session and info["authid"] == "other"
        assert other.details.session in await watcher.call("wamp.session.list")
        assert (await watcher.call("wamp.session.get", other.details.session))["authid"] == "other"
        registration = await other.register(lambda: None, "com.meta.proc")
        assert await watcher.call("wamp.registration.lookup", "com.meta.proc") == registration.id
        assert await watcher.call("wamp.registration.list_callees", registration.id) == [other.details.session]
        await leave(other)
        left = await asyncio.wait_for(events.get(), TIMEOUT)
        assert left[0] == other.details.session
        assert await watcher.call("wamp.registration.lookup", "com.meta.proc") is None
        await leave(watcher)
    run(scenario())


@pytest.fixture(scope="module")
def token_service():
    running = ServiceProcess("--token", "letmein")
    yield running
    running.stop()


def test_ticket_authentication(token_service):
    """The logged URL carries the token; the right ticket joins, a wrong or missing one is refused."""
    assert token_service.token == "letmein"

    async def scenario():
        session = await joined(token_service, realm="webkernel", ticket="letmein")
        assert session.details.authmethod == "ticket"
        await leave(session)
        for ticket in ("wrong", None):
            with pytest.raises(ConnectionRefusedError, match="not_authorized"):
                await joined(token_service, realm="webkernel", ticket=ticket)
    run(scenario())
