"""Bad input through every transport and serializer of the real service disturbs nothing.

One real ``twistd webkernel`` (``--max-message-size 65536``) with one real
kernel, and two healthy sessions (WebSocket/JSON and RawSocket/MessagePack)
watching that kernel's output, for the whole module. Hypothesis feeds plain
sockets garbage instead of a handshake, broken WebSocket and RawSocket
frames, random and wrongly shaped WAMP messages, invalid URIs, messages
around the size limit and values another serializer cannot represent, for
every transport x serializer the service speaks. Each fuzz connection gets a
documented answer (ERROR, ABORT ``wamp.error.protocol_violation``) or is
closed, within a bounded time, never silence; after every example the
healthy sessions are served as before (``tests.fuzzing.HealthySession.check``)
and, at the end, the kernel still holds its state. See tests/fuzzing.py for
running a longer, random fuzz run.
"""

import datetime
import re
import shutil
import socket
import struct
import tempfile
from pathlib import Path

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import rawwire
from tests.fuzzing import HealthySession, fuzz_settings
from tests.service import ServiceProcess
from tests.test_router_fuzz import requests as wamp_requests
from tests.test_router_fuzz import wamp_like
from tests.wirepeer import (
    ABORT, ANSWER_WITHIN, CALL, COMBINATIONS, ERROR, GOODBYE, RAWSOCKET, RESULT, SERIALIZERS,
    WEBSOCKET, Closed, NoAnswer, WirePeer, joined,
)

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

MAX_MESSAGE = 65536
PROBE = 2**52 + 1  # the request id of the CALL that asks "are you still there?"
#: message types a router sends
FROM_ROUTER = {2, 3, 4, 6, 8, 17, 33, 35, 36, 50, 65, 67, 68, 69}
#: every URI docs/protocol.md documents (its error table)
DOCUMENTED = set(re.findall(r"^\| `(wamp\.[a-z_.]+)`",
                            (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(),
                            re.MULTILINE))


@pytest.fixture(scope="module")
def service():
    kernel_dir = tempfile.mkdtemp(prefix="webkernel-fuzz-")
    running = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir, "--max-kernels", "1",
                             "--max-message-size", str(MAX_MESSAGE))
    yield running
    running.stop()
    shutil.rmtree(kernel_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def healthy(service):
    """Two healthy sessions watching a kernel that holds ``x = 41``."""
    sessions = [HealthySession(service, WEBSOCKET, "json"),
                HealthySession(service, RAWSOCKET, "msgpack")]
    (model,), _ = sessions[0].call("webkernel.kernels.start", kwargs={}, within=60)
    for session in sessions:
        session.kernel_id = model["id"]
        session.subscribe(f"webkernel.kernel.{model['id']}.iopub", match="prefix")
    assert sessions[0].call(f"webkernel.kernel.{model['id']}.eval_cell", ["x = 41"])[0] == [""]
    yield sessions
    for session in sessions:
        session.close()


@pytest.fixture
def witnesses(healthy):
    """The healthy sessions, settled before a test and checked after each example."""
    for session in healthy:
        session.settle()
    return healthy


def undisturbed(witnesses):
    for session in witnesses:
        session.check()


# -- what a fuzz connection may get back -------------------------------------------------

def documented(messages):
    """Every message is one a router sends; every ERROR and ABORT carries a documented URI."""
    for msg in messages:
        assert type(msg) is list and msg and msg[0] in FROM_ROUTER, msg
        if msg[0] == ERROR:
            assert msg[4] in DOCUMENTED, msg
        if msg[0] in (ABORT, GOODBYE):
            assert msg[2] in DOCUMENTED, msg


def probe_outcome(peer):
    """Send the probe CALL and say how the connection ended up: "answered" or "closed".

    The service must answer the probe or close the connection (after an ABORT
    if it sends one) within the bound; silence fails.
    """
    try:
        peer.send([CALL, PROBE, {}, "wamp.session.count"])
    except OSError:  # already closed by the service
        return "closed" if peer.closed_within() else "silent"
    return outcome(peer)


def outcome(peer, request=PROBE):
    try:
        answer = peer.answer_to(request)
    except Closed as closed:
        documented(closed.frames)
        return "closed"
    except NoAnswer:
        raise AssertionError("the service neither answered nor closed the connection") from None
    except ValueError:  # bytes that are not a WAMP message: only a dying connection sends them
        return "closed" if peer.closed_within() else "garbled"
    documented([*peer.passed, answer])
    if answer[0] == ABORT:
        assert answer[2] == "wamp.error.protocol_violation" and answer[1]["message"], answer
    if answer[0] in (ABORT, GOODBYE):  # GOODBYE: the fuzz itself said goodbye
        assert peer.closed_within(), f"{answer}, then the connection stayed open"
        return "closed"
    assert answer[:2] in ([RESULT, request], [ERROR, CALL]), answer
    return "answered"


def half_closed(sock):
    """Shut our side; True if the service then closes its side within the bound."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return True
    sock.settimeout(ANSWER_WITHIN)
    try:
        while sock.recv(65536):
            pass
    except ConnectionError:
        pass
    except socket.timeout:
        return False
    return True


def fuzz_peer(service, transport, serializer, join=True):
    """A WirePeer to *service*, joined to the realm unless *join* is false."""
    if join:
        return joined(service.port, transport, serializer)
    return WirePeer(service.port, transport, serializer)


# -- garbage instead of a handshake --------------------------------------------------------

@fuzz_settings(60)
@given(data=st.binary(min_size=1, max_size=300))
def test_garbage_instead_of_a_handshake(service, witnesses, data):
    """Random bytes on a fresh connection get an HTTP 4xx, a RawSocket refusal or a close."""
    sock = rawwire.connect(service.port)
    try:
        sock.sendall(data)
        response = b""
        sock.settimeout(0.05)
        try:
            response = sock.recv(4096)
        except (socket.timeout, ConnectionError):
            pass
        assert half_closed(sock), "the service kept a half-closed connection open"
    finally:
        sock.close()
    if data[:1] == b"\x7f":
        assert response[:1] in (b"", b"\x7f"), response
    else:
        assert response == b"" or re.match(rb"HTTP/1\.[01] [1-4]\d\d ", response), response[:100]
    undisturbed(witnesses)


@fuzz_settings(40)
@given(octet=st.integers(0, 255), reserved=st.binary(min_size=2, max_size=2))
def test_rawsocket_handshakes(service, witnesses, octet, reserved):
    """Any RawSocket handshake is refused by a close or accepted; an accepted one can join."""
    serializer, max_length = octet & 0x0F, 2 ** (9 + (octet >> 4))
    sock = rawwire.connect(service.port)
    try:
        sock.sendall(bytes([0x7F, octet]) + reserved)
        try:
            reply = rawwire.recv_exactly(sock, 4)
        except ConnectionError:
            reply = b""
        if serializer not in (1, 2):
            assert reply == b"" and half_closed(sock), reply
            return
        assert reply[0] == 0x7F and reply[1] & 0x0F == serializer and reply[2:] == b"\0\0", reply
        encode, decode = SERIALIZERS["json" if serializer == 1 else "msgpack"]
        hello = encode([1, "webkernel", {"roles": {"caller": {}}}])
        sock.sendall(struct.pack("!I", len(hello)) + hello)
        try:
            (prefix,) = struct.unpack("!I", rawwire.recv_exactly(sock, 4))
            welcome = decode(rawwire.recv_exactly(sock, prefix))
            assert welcome[0] == 2 and prefix <= max_length, (welcome, prefix, max_length)
        except ConnectionError:  # a WELCOME does not fit in 512 bytes: closed, not left hanging
            assert max_length == 512
    finally:
        sock.close()
    undisturbed(witnesses)


# -- broken frames -----------------------------------------------------------------------------

def wamp_payloads(serializer):
    encode = SERIALIZERS[serializer][0]
    return st.one_of(wamp_like.map(encode), st.binary(max_size=200), st.sampled_from([
        b"", b"[]", b"{}", b'{"a": 1}', b"\xff\xfe", b'["\xed\xa0\x80"]', b"[1, \"\xc3\"]",
        b'[48, 1, {}, "\\ud800"]', b"[3", b"\x91\x01", b"\x80", b"\xd9\xd9\xf7",
    ]))


@st.composite
def websocket_frames(draw, serializer):
    """(bytes, complete) for one to three WebSocket frames, each perhaps broken."""
    data, complete = b"", True
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:  # raw garbage: who knows where a frame ends
            return data + draw(st.binary(min_size=1, max_size=64)), False
        own = 0x2 if serializer != "json" else 0x1
        opcode = draw(st.sampled_from([own, own, own, 0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB, 0xF]))
        payload = draw(wamp_payloads(serializer))
        if opcode == 0x8 and draw(st.booleans()):
            payload = struct.pack("!H", draw(st.sampled_from([1000, 1001, 999, 1005, 3000, 5000]))) + payload[:20]
        fin = draw(st.sampled_from([True, True, True, False]))
        rsv = draw(st.sampled_from([0, 0, 0, 0, 1, 4, 7]))
        masked = draw(st.sampled_from([True, True, True, True, False]))
        missing = draw(st.sampled_from([0, 0, 0, 0, 0, 1, 100, 2**16, 2**40]))
        data += frame(opcode, payload, fin, rsv, masked, len(payload) + missing)
        complete = complete and missing == 0
    return data, complete


def frame(opcode, payload, fin=True, rsv=0, masked=True, length=None):
    length = len(payload) if length is None else length
    header = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header += bytes([mask_bit | length])
    elif length < 65536:
        header += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        header += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return header + payload
    key = b"\x01\x02\x03\x04"
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@st.composite
def rawsocket_frames(draw, serializer):
    """(bytes, complete) for one to three RawSocket frames, each perhaps broken."""
    data, complete = b"", True
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            return data + draw(st.binary(min_size=1, max_size=64)), False
        kind = draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2, 3, 7]))
        payload = draw(wamp_payloads(serializer))
        extra = draw(st.sampled_from([0, 0, 0, 0, 0, -1, 1, 100, MAX_MESSAGE, 2**24 - 1]))
        declared = max(0, min(len(payload) + extra, 2**24 - 1))
        data += struct.pack("!I", kind << 24 | declared) + payload
        # WAMP messages, PINGs and PONGs wait for their declared length; reserved types are refused
        complete = complete and (declared == len(payload) or kind not in (0, 1, 2)
                                 or declared > MAX_MESSAGE)
    return data, complete


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(50)
@given(data=st.data(), join=st.booleans())
def test_broken_frames(service, witnesses, transport, serializer, data, join):
    """Broken frames, before or after HELLO, get an answer, an ABORT or a close; never silence."""
    frames = websocket_frames(serializer) if transport == WEBSOCKET else rawsocket_frames(serializer)
    sent, complete = data.draw(frames)
    peer = fuzz_peer(service, transport, serializer, join)
    try:
        peer.send_raw(sent)
        if complete:
            assert probe_outcome(peer) in ("answered", "closed")
        else:
            assert half_closed(peer.sock), "the service kept a half-closed connection open"
    finally:
        peer.close()
    undisturbed(witnesses)


# -- wrong WAMP messages after a valid HELLO ----------------------------------------------------

@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(40)
@given(raw=wamp_like)
def test_random_wamp_messages(service, witnesses, transport, serializer, raw):
    """Any message-shaped value is answered, ignored or refused with protocol_violation."""
    peer = fuzz_peer(service, transport, serializer)
    try:
        peer.send(raw)
        assert probe_outcome(peer) in ("answered", "closed")
    finally:
        peer.close()
    undisturbed(witnesses)


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(20)
@given(raws=st.lists(wamp_requests, min_size=1, max_size=8))
def test_random_request_sequences(service, witnesses, transport, serializer, raws):
    """Well-shaped requests with random options, URIs and ids leave the session usable or ABORT it."""
    peer = fuzz_peer(service, transport, serializer)
    try:
        for raw in raws:
            try:
                peer.send(raw)
            except OSError:  # an earlier one closed the session (a GOODBYE, a violation)
                break
        assert probe_outcome(peer) in ("answered", "closed")
    finally:
        peer.close()
    undisturbed(witnesses)


# -- invalid URIs ---------------------------------------------------------------------------

NEVER_IN_A_URI = " \t\r\n#"
invalid_anywhere = st.builds(lambda a, bad, b: a + bad + b, st.text(max_size=8),
                             st.sampled_from(NEVER_IN_A_URI), st.text(max_size=8)).filter(
    lambda uri: not uri.startswith("\x00"))  # in JSON that is binary (base64), not a string
invalid_exact = st.one_of(invalid_anywhere, st.sampled_from(
    ["", ".", "..", ".com", "com.", "com..x", "com.x.", "a.b..c", "..a"]))
not_a_string = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.lists(st.integers(0, 9), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=2))


@st.composite
def bad_uri_requests(draw):
    """(request, expects an answer, URI is a string) with an invalid URI."""
    action = draw(st.sampled_from(["subscribe", "register", "call", "publish", "publish_ack"]))
    match = draw(st.sampled_from(["exact", "prefix", "wildcard"])) if action in (
        "subscribe", "register") else "exact"
    uri = draw(st.one_of(invalid_exact if match == "exact" else invalid_anywhere, not_a_string))
    options = {} if match == "exact" else {"match": match}
    kind = {"subscribe": 32, "register": 64, "call": 48, "publish": 16, "publish_ack": 16}[action]
    if action == "publish_ack":
        options = {"acknowledge": True}
    return [kind, 7, options, uri], action != "publish", type(uri) is str


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(25)
@given(case=bad_uri_requests())
def test_invalid_uris(service, witnesses, transport, serializer, case):
    """SUBSCRIBE, REGISTER, CALL, PUBLISH with a bad URI: ERROR invalid_uri, and the session goes on.

    A PUBLISH that did not ask for acknowledgement gets no answer at all.
    """
    request, answered, _ = case
    peer = fuzz_peer(service, transport, serializer)
    try:
        peer.send(request)
        assert probe_outcome(peer) == "answered"
        errors = [m for m in peer.passed if m[0] == ERROR]
        if answered:
            assert [e[:5] for e in errors] == [[ERROR, request[0], 7, {}, "wamp.error.invalid_uri"]]
            assert errors[0][5][0], "the error says why"
        else:
            assert errors == []
    finally:
        peer.close()
    undisturbed(witnesses)


# -- the size limit ----------------------------------------------------------------------------

def sized_call(serializer, size):
    """A CALL of com.nobody.home encoded in exactly *size* bytes (or as near as the format allows)."""
    encode = SERIALIZERS[serializer][0]
    pad = max(0, size - len(encode([CALL, 3, {}, "com.nobody.home", [""]])))
    for _ in range(4):
        payload = encode([CALL, 3, {}, "com.nobody.home", ["x" * pad]])
        pad = max(0, pad + size - len(payload))
    return payload


def send_in_pieces(peer, payload, pieces):
    """One message; over WebSocket as *pieces* fragments."""
    if peer.transport == RAWSOCKET:
        return peer.send_payload(payload)
    cuts = [len(payload) * i // pieces for i in range(pieces + 1)]
    opcode = 0x1 if peer.serializer == "json" else 0x2
    for i in range(pieces):
        peer.send_raw(frame(opcode if i == 0 else 0x0, payload[cuts[i]:cuts[i + 1]],
                            fin=i == pieces - 1))


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(12)
@given(delta=st.one_of(st.integers(-2, 2), st.sampled_from([-4000, 1000, 2**20])),
       pieces=st.integers(1, 3))
def test_messages_around_the_size_limit(service, witnesses, transport, serializer, delta, pieces):
    """A message up to --max-message-size is handled; one byte more closes the connection.

    WebSocket drops the connection (also when the fragments of one message add
    up to too much); RawSocket sends ABORT protocol_violation first.
    """
    payload = sized_call(serializer, MAX_MESSAGE + delta)
    peer = fuzz_peer(service, transport, serializer)
    try:
        try:
            send_in_pieces(peer, payload, pieces)
        except OSError:  # the service closed the connection before it had it all
            assert len(payload) > MAX_MESSAGE
        if len(payload) <= MAX_MESSAGE:
            answer = peer.answer_to(3)
            assert answer[:5] == [ERROR, CALL, 3, {}, "wamp.error.no_such_procedure"], answer
            assert probe_outcome(peer) == "answered"
        else:
            try:
                abort = peer.answer_to(3)
            except Closed:  # WebSocket drops it; a RawSocket ABORT may be lost to the reset
                assert transport == WEBSOCKET or len(payload) > 2 * MAX_MESSAGE
            else:
                assert transport == RAWSOCKET and abort[0] == ABORT, abort
                assert "exceeds the limit" in abort[1]["message"], abort
                assert peer.closed_within()
    finally:
        peer.close()
    undisturbed(witnesses)


def test_messages_too_large_for_a_peer(service, witnesses):
    """A peer that accepts only 1 KiB (its RawSocket handshake): an INVOCATION or a RESULT
    larger than that fails the call with payload_size_exceeded; both sessions go on."""
    small = WirePeer(service.port, RAWSOCKET, "json", max_exp=1)
    large = joined(service.port, WEBSOCKET, "msgpack")
    try:
        small.join()
        small.send([64, 1, {}, "com.fuzz.small"])
        assert small.recv()[0] == 65
        large.send([64, 1, {}, "com.fuzz.large"])
        assert large.recv()[0] == 65
        answer = large.call(2, "com.fuzz.small", ["x" * 2000])
        assert answer[:5] == [ERROR, CALL, 2, {}, "wamp.error.payload_size_exceeded"], answer
        small.send([CALL, 3, {}, "com.fuzz.large", ["x"]])
        invocation = large.recv()
        large.send([70, invocation[1], {}, ["y" * 2000]])
        answer = small.answer_to(3)
        assert answer[:5] == [ERROR, CALL, 3, {}, "wamp.error.payload_size_exceeded"], answer
        for peer in (small, large):
            assert probe_outcome(peer) == "answered"
    finally:
        small.close()
        large.close()
    undisturbed(witnesses)


# -- values a receiving serializer cannot represent --------------------------------------------

@pytest.fixture(scope="module")
def receivers(service, healthy):
    """A subscriber of com.fuzz.topic and a callee of com.fuzz.echo.<n> on every combination."""
    subscribers, callees = [], []
    for n, (transport, serializer) in enumerate(COMBINATIONS):
        subscriber = joined(service.port, transport, serializer)
        subscriber.send([32, 1, {}, "com.fuzz.topic"])
        assert subscriber.recv()[0] == 33
        callee = joined(service.port, transport, serializer)
        callee.send([64, 1, {}, f"com.fuzz.echo.{n}"])
        assert callee.recv()[0] == 65
        subscribers.append(subscriber)
        callees.append(callee)
    yield subscribers, callees
    for peer in subscribers + callees:
        peer.close()


def exotic_values(serializer):
    """Values *serializer* can send that another serializer may not represent."""
    beyond_64_bits = st.one_of(st.integers(2**64, 2**200), st.integers(-2**200, -2**63 - 1))
    deep = st.integers(100, 300).map(_nested)  # the test's own CBOR decoder stops at 400
    common = st.one_of(beyond_64_bits, deep, st.floats())
    if serializer == "json":
        return common
    if serializer == "msgpack":
        return st.one_of(common.filter(lambda v: type(v) is not int), st.binary(max_size=8))
    return st.one_of(common, st.binary(max_size=8), st.frozensets(st.integers(), max_size=3).map(set),
                     st.datetimes(timezones=st.just(datetime.timezone.utc)),
                     st.just(cbor2.undefined), st.integers(32, 255).map(cbor2.CBORSimpleValue),
                     st.builds(cbor2.CBORTag, st.integers(40000, 50000), st.integers()))


def _nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(15)
@given(data=st.data())
def test_values_a_receiver_cannot_represent(service, witnesses, receivers, transport, serializer,
                                           data):
    """A publication or call carrying a value some peer's serializer cannot encode reaches the
    others, and never closes a session: the caller gets RESULT or ERROR invalid_payload."""
    value = data.draw(exotic_values(serializer))
    callee_index = data.draw(st.integers(0, len(COMBINATIONS) - 1))
    subscribers, callees = receivers
    peer = fuzz_peer(service, transport, serializer)
    try:
        peer.send([16, 5, {"acknowledge": True}, "com.fuzz.topic", [value]])
        answer = peer.recv()
        if answer[0] == ABORT:  # the sender's own serializer refused it (nesting too deep)
            assert answer[2] == "wamp.error.protocol_violation", answer
            return
        assert answer[:2] == [17, 5], answer
        peer.send([CALL, 6, {}, f"com.fuzz.echo.{callee_index}", [value]])
        peer.send([CALL, PROBE, {}, "wamp.session.count"])
        peer.answer_to(PROBE)  # the router handled CALL 6 before it: INVOCATION or ERROR is out
        refused = [m for m in peer.passed if m[:3] == [ERROR, CALL, 6]]
        if not refused:
            invocation = callees[callee_index].recv()
            callees[callee_index].send([70, invocation[1], {}, invocation[4]])  # YIELD it back
        result = refused[0] if refused else peer.answer_to(6)
        assert result[0] == RESULT or result[4] in ("wamp.error.invalid_payload",
                                                    "wamp.error.payload_size_exceeded"), result
        for n, receiver in enumerate(subscribers + callees):  # every receiver is still there
            assert receiver.call(100 + n, "wamp.session.count")[0] == RESULT
    finally:
        peer.close()
    undisturbed(witnesses)


# -- and at the end ---------------------------------------------------------------------------

def test_the_kernel_and_its_watchers_were_never_disturbed(service, witnesses):
    """After all that, the kernel kept its state and both healthy sessions see its output."""
    kernel_id = witnesses[0].kernel_id
    for session in witnesses:
        assert session.call(f"webkernel.kernel.{kernel_id}.eval_cell", ["x + 1"])[0] == ["42"]
        assert session.call(f"webkernel.kernel.{kernel_id}.eval_cell", ["1+1"])[0] == ["2"]
    for session in witnesses:  # each saw the results of both sessions' cells as events
        session.call("wamp.session.count")
        results = [e[-1]["content"]["data"]["text/plain"] for e in session.events
                   if e[-1].get("msg_type") == "execute_result"]
        assert results[-4:] == ["42", "2", "42", "2"], results
    undisturbed(witnesses)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_a_rawsocket_ping_gets_a_pong(service, witnesses, serializer):
    """Over a real socket, RawSocket PINGs (with a payload, empty) get PONGs with their payloads; the session goes on."""
    peer = joined(service.port, RAWSOCKET, serializer)
    try:
        peer.send_raw(struct.pack("!I", 1 << 24 | 5) + b"hello" + struct.pack("!I", 1 << 24))
        assert probe_outcome(peer) == "answered"
        assert peer.pongs == [b"hello", b""]
    finally:
        peer.close()
    undisturbed(witnesses)
