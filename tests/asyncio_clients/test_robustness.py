"""Bad input, refused origins and slow readers against the real service.

Each case proves two things: the offender gets a clear answer (ERROR, ABORT
with a reason, an HTTP status, or a closed connection), and a concurrent
healthy session sees no disruption.
"""

import asyncio
import json
import threading
import urllib.request

import pytest

from tests import rawwire
from tests.service import ServiceProcess
from tests.asyncio_clients.wamp_clients import TIMEOUT, joined, leave

HELLO = [1, "realm1", {"roles": {"caller": {}, "subscriber": {}}}]


@pytest.fixture(scope="module")
def service():
    running = ServiceProcess("--anonymous", "--realm", "realm1", "--max-message-size", "65536",
                             "--max-output", "1048576")
    yield running
    running.stop()


def healthy_round_trip(service):
    """A fresh session can still call the meta API."""
    async def scenario():
        session = await joined(service)
        count = await session.call("wamp.session.count")
        await leave(session)
        return count
    return asyncio.run(asyncio.wait_for(scenario(), 30))


def ws_joined(service):
    status, sock = rawwire.websocket(service.port)
    assert status == 101
    rawwire.ws_wamp(sock, HELLO)
    assert rawwire.ws_wamp_recv(sock)[0] == 2  # WELCOME
    return sock


@pytest.mark.parametrize("payload", [
    "not json at all", "{}", "[]", '["x"]', "[999, 1]", '[48, "one", {}, "com.x"]',
    '[1, "realm1", {}]', '[2, 1, {}]', '[36, 1, 2, {}]',
])
def test_malformed_websocket_message_aborts_only_that_session(service, payload):
    """Garbage or a wrong shape closes that session with protocol_violation; others go on."""
    sock = ws_joined(service)
    rawwire.ws_send(sock, payload)
    reply = rawwire.ws_wamp_recv(sock)
    assert reply[:3] == [3, {"message": reply[1].get("message")}, "wamp.error.protocol_violation"]
    assert reply[1]["message"]
    assert rawwire.closed(sock)
    assert healthy_round_trip(service) >= 1


def test_invalid_uri_gets_error_and_session_continues(service):
    """A CALL with an invalid URI is answered with invalid_uri; the session stays usable."""
    sock = ws_joined(service)
    rawwire.ws_wamp(sock, [48, 1, {}, "com. bad uri"])
    assert rawwire.ws_wamp_recv(sock)[:5] == [8, 48, 1, {}, "wamp.error.invalid_uri"]
    rawwire.ws_wamp(sock, [48, 2, {}, "wamp.session.count"])
    assert rawwire.ws_wamp_recv(sock)[:2] == [50, 2]


def test_oversized_message_is_refused(service):
    """A message above --max-message-size closes the connection; the service goes on."""
    sock = ws_joined(service)
    rawwire.ws_send(sock, json.dumps([16, 1, {}, "com.big", ["x" * 70000]]))
    assert rawwire.closed(sock)
    _, rs = rawwire.rawsocket(service.port)
    rawwire.rs_send(rs, b"[" + b"1," * 40000 + b"1]")
    assert rawwire.closed(rs)
    assert healthy_round_trip(service) >= 1


def test_rawsocket_bad_input(service):
    """An unknown RawSocket serializer and a garbage frame each close that connection."""
    reply, sock = rawwire.rawsocket(service.port, serializer=9)
    assert rawwire.closed(sock)
    reply, sock = rawwire.rawsocket(service.port)
    assert reply[0] == 0x7F and reply[1] & 0x0F == 1
    rawwire.rs_send(sock, HELLO)
    assert rawwire.rs_recv(sock)[0] == 2
    rawwire.rs_send(sock, b"\xff\xfe garbage")
    assert rawwire.rs_recv(sock)[2] == "wamp.error.protocol_violation"
    assert rawwire.closed(sock)
    assert healthy_round_trip(service) >= 1


def test_http_garbage_and_page(service):
    """Non-HTTP bytes get a 400; the placeholder page answers at /."""
    sock = rawwire.connect(service.port)
    sock.sendall(b"\x00\x01\x02 not http\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 400")
    with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/", timeout=TIMEOUT) as page:
        assert page.status == 200 and b"webkernel" in page.read()


def test_concurrent_healthy_session_undisturbed(service):
    """A session streaming calls keeps working while others send garbage."""
    async def scenario():
        callee = await joined(service)
        caller = await joined(service, "rawsocket", "msgpack")
        await callee.register(lambda x: x, "com.echo")
        answers = []
        attack = threading.Thread(target=_attack, args=(service.port, answers))
        attack.start()
        results = [await caller.call("com.echo", i) for i in range(300)]
        await asyncio.get_running_loop().run_in_executor(None, attack.join, 30)
        assert results == list(range(300))
        assert not attack.is_alive()
        assert answers == ["wamp.error.protocol_violation"] * 20
        await leave(callee, caller)
    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert service.alive()


def _attack(port, answers):
    for payload in ("nonsense", "[1]", "[48]", '[16, 1, {}, 5]') * 5:
        status, sock = rawwire.websocket(port)
        rawwire.ws_send(sock, payload)
        answers.append(rawwire.ws_wamp_recv(sock)[2])  # the ABORT's reason
        sock.close()


@pytest.mark.parametrize("origin,allowed", [
    (None, True),
    ("http://127.0.0.1:{port}", True),
    ("http://evil.example", False),
    ("https://127.0.0.1:{port}.evil.example", False),
    ("null", False),
])
def test_origin_check(service, origin, allowed):
    """Browsers from a foreign Origin are refused; the service's own origin and non-browsers are not."""
    origin = origin.format(port=service.port) if origin else None
    status, sock = rawwire.websocket(service.port, origin=origin)
    sock.close()
    assert status == 101 if allowed else status in (400, 403)


def test_allowed_origin_option():
    """--allowed-origin admits a listed origin (and only it)."""
    running = ServiceProcess("--anonymous", "--allowed-origin", "https://notebook.example.org")
    try:
        assert rawwire.websocket(running.port, origin="https://notebook.example.org")[0] == 101
        assert rawwire.websocket(running.port, origin="https://other.example.org")[0] == 403
    finally:
        running.stop()


def test_slow_reader_is_closed_and_memory_stays_bounded(service):
    """A subscriber that never reads is closed past --max-output; publishing goes on."""
    _, slow = rawwire.rawsocket(service.port)
    slow.setsockopt(rawwire.socket.SOL_SOCKET, rawwire.socket.SO_RCVBUF, 4096)
    rawwire.rs_send(slow, [1, "realm1", {"roles": {"subscriber": {}}}])
    slow_id = rawwire.rs_recv(slow)[1]
    rawwire.rs_send(slow, [32, 1, {}, "com.flood"])
    assert rawwire.rs_recv(slow)[0] == 33  # SUBSCRIBED; from now on it never reads

    async def scenario():
        watcher = await joined(service)
        gone = asyncio.get_running_loop().create_future()
        await watcher.subscribe(
            lambda sid, *rest: sid == slow_id and not gone.done() and gone.set_result(sid),
            "wamp.session.on_leave")
        publisher = await joined(service, "rawsocket", "msgpack")
        chunk = "y" * 16000
        for i in range(1000):  # 16 MB offered to a reader that takes nothing
            publisher.publish("com.flood", chunk)
            if gone.done():
                break
            if i % 50 == 0:
                await publisher.call("wamp.session.count")  # let the router work
        assert await asyncio.wait_for(gone, TIMEOUT) == slow_id
        assert await publisher.call("wamp.session.count") >= 2
        await leave(watcher, publisher)
    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert "bytes of output are waiting" in service.log()
    assert _rss_mib(service.process.pid) < 300
    slow.close()


def _rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
