"""Every kernel procedure, called wrongly, answers a documented error and disturbs nothing.

One real ``twistd webkernel`` (``--max-kernels 1``, so even a ``start`` the
fuzz made valid by chance is refused with ``kernel_limit``) with one real
kernel holding ``x = 41``, and a healthy session, for the whole module.
Hypothesis calls every procedure of docs/kernels.md, over every transport x
serializer, with wrong argument types, unknown keywords, missing and extra
arguments (``wamp.error.invalid_argument``), for unknown and malformed kernel
ids (``webkernel.error.no_such_kernel``, ``wamp.error.invalid_uri``) and
unknown procedures of the real kernel (``wamp.error.no_such_procedure``);
then with random arguments (a RESULT or a documented error); and posts
malformed bodies to ``/jsonrpc``. No call may go unanswered; after every
example the healthy session is served as before and the kernel still says
``x + 1`` is 42. ``shutdown``, ``restart`` and ``interrupt`` are only ever
called wrongly, and code is only ever harmless (``execute`` of random text
would be legitimate input, not bad input: the types are fuzzed, not the code).
"""

import json
import re
import shutil
import tempfile
import urllib.error
import urllib.request

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from broker.kernel import procedures
from tests.fuzzing import HealthySession, fuzz_settings
from tests.service import ServiceProcess
from tests.test_router_fuzz import values
from tests.wirepeer import CALL, COMBINATIONS, ERROR, RAWSOCKET, RESULT, WEBSOCKET, joined

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

HARMLESS_CODE = ["", "pass", "x", "1+1", "x  # a comment"]
INT32, SAFE_INT = 2**31 - 1, 2**53


def _is_int(v, low, high):
    return type(v) is int and low <= v <= high


def _json_object(v):
    """A JSON object a Jupyter message can carry (as jupyter_client packs it)."""
    if type(v) is not dict:
        return False
    try:
        json.dumps(v, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return False
    return True


# What each argument must be (docs/kernels.md): name -> predicate(value, code).
TEXT = lambda v, code: type(v) is str  # noqa: E731
FLAG = lambda v, code: type(v) is bool  # noqa: E731
KINDS = {
    "code": TEXT, "value": TEXT, "msg_id": TEXT,
    "silent": FLAG, "store_history": FLAG, "stop_on_error": FLAG, "output": FLAG, "raw": FLAG,
    "unique": FLAG, "wait": FLAG,
    "allow_stdin": lambda v, code: v is None or type(v) is bool,
    "user_expressions": lambda v, code: v is None or (type(v) is dict and all(
        type(k) is str and type(e) is str for k, e in v.items())),
    "cursor_pos": lambda v, code: v is None or (type(code) is str and _is_int(v, 0, len(code))),
    "detail_level": lambda v, code: _is_int(v, 0, 1),
    "hist_access_type": lambda v, code: v in ("tail", "range", "search") and type(v) is str,
    "n": lambda v, code: _is_int(v, 0, INT32),
    "session": lambda v, code: v is None or _is_int(v, -INT32, INT32),
    "start": lambda v, code: v is None or _is_int(v, -INT32, INT32),
    "stop": lambda v, code: v is None or _is_int(v, -INT32, INT32),
    "pattern": lambda v, code: v is None or type(v) is str,
    "since": lambda v, code: _is_int(v, -SAFE_INT, SAFE_INT),
    "limit": lambda v, code: v is None or _is_int(v, 0, SAFE_INT),
    "kernel_name": lambda v, code: v is None or type(v) is str,
    "user": lambda v, code: type(v) is str and 0 < len(v) <= 256,
    "access": lambda v, code: type(v) is str and v in ("watch", "full"),
    "msg_type": lambda v, code: type(v) is str and v in ("comm_open", "comm_msg", "comm_close"),
    "content": lambda v, code: _json_object(v) and type(v.get("comm_id")) is str,
    "metadata": lambda v, code: v is None or _json_object(v),
    "buffers": lambda v, code: v is None or (type(v) is list and len(v) <= 64
                                             and all(type(b) is bytes for b in v)),
    "target_name": lambda v, code: v is None or type(v) is str,
}
# procedure -> (required arguments, optional arguments), as docs/kernels.md lists them
KERNEL_PROCEDURES = {
    "execute": (["code"], ["silent", "store_history", "user_expressions", "allow_stdin",
                           "stop_on_error"]),
    "eval_cell": (["code"], []),
    "complete": (["code"], ["cursor_pos"]),
    "inspect": (["code"], ["cursor_pos", "detail_level"]),
    "is_complete": (["code"], []),
    "history": ([], ["hist_access_type", "n", "output", "raw", "session", "start", "stop",
                     "pattern", "unique"]),
    "kernel_info": ([], []),
    "input": (["value"], []),
    "outputs": ([], ["since", "limit"]),
    "reply": (["msg_id"], []),
    "interrupt": ([], []),
    "restart": ([], []),
    "shutdown": ([], []),
    "share": (["user"], ["access"]),
    "unshare": (["user"], []),
    "comm": (["msg_type", "content"], ["metadata", "buffers"]),
    "comm_info": ([], ["target_name"]),
}
HOST_PROCEDURES = {
    "webkernel.kernelspecs": ([], []),
    "webkernel.kernels.list": ([], []),
    "webkernel.kernels.start": ([], ["kernel_name", "wait"]),
}
#: what a valid call may answer besides RESULT
DOCUMENTED = {"wamp.error.invalid_argument", "webkernel.error.no_such_kernelspec",
              "webkernel.error.kernel_limit", "webkernel.error.no_pending_input",
              "webkernel.error.no_such_request", "webkernel.error.execution_failed"}


def test_every_procedure_is_fuzzed():
    """The table above names every procedure a kernel registers."""
    assert set(KERNEL_PROCEDURES) == set(procedures.PROCEDURES) | set(procedures.LIFECYCLE)


@pytest.fixture(scope="module")
def service():
    kernel_dir = tempfile.mkdtemp(prefix="webkernel-fuzz-")
    running = ServiceProcess("--anonymous", "--kernel-dir", kernel_dir, "--max-kernels", "1")
    yield running
    running.stop()
    shutil.rmtree(kernel_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def kernel(service):
    """A healthy session and the model of the kernel it started (``x = 41`` in it)."""
    session = HealthySession(service, WEBSOCKET, "json")
    (model,), _ = session.call("webkernel.kernels.start", kwargs={}, within=60)
    assert session.call(uri(model["id"], "eval_cell"), ["x = 41"])[0] == [""]
    yield session, model
    session.close()


@pytest.fixture(scope="module")
def callers(service, kernel):
    """One joined fuzz session per transport x serializer."""
    peers = {combo: joined(service.port, *combo) for combo in COMBINATIONS}
    yield peers
    for peer in peers.values():
        peer.close()


@pytest.fixture
def healthy(kernel, callers):
    session, model = kernel
    session.settle()
    return session, model


def uri(kernel_id, name):
    return f"webkernel.kernel.{kernel_id}.{name}"


def undisturbed(healthy):
    """The healthy session is served; the kernel is the same one, idle, and still has x."""
    session, model = healthy
    session.check()
    (kernels,), _ = session.call("webkernel.kernels.list")
    assert [(k["id"], k["created"]) for k in kernels] == [(model["id"], model["created"])], kernels
    assert session.call(uri(model["id"], "eval_cell"), ["x + 1"])[0] == ["42"]


def answer(peer, procedure, args, kwargs, request=7):
    """CALL and its answer (RESULT or ERROR), which must come within the bound."""
    try:
        peer.encode([args, kwargs])
    except (OverflowError, TypeError, ValueError):
        reject()  # not a value this peer's serializer can send (msgpack: ints beyond 64 bits)
    if peer.serializer == "json" and _nul_text([args, kwargs]):
        reject()  # WAMP's JSON reads a string that starts with NUL as base64 binary: a violation
    reply = peer.call(request, procedure, args, kwargs)
    assert reply[0] in (RESULT, ERROR) and reply[1:3] in ([request, {}], [CALL, request]), reply
    assert not peer.passed, peer.passed
    return reply


def _nul_text(value):
    if type(value) is str:
        return value.startswith("\x00")
    if type(value) is dict:
        return any(_nul_text(k) or _nul_text(v) for k, v in value.items())
    return type(value) is list and any(_nul_text(v) for v in value)


# -- wrong arguments -----------------------------------------------------------------------------

def valid_value(name, code):
    """A value *name* accepts (code: harmless; cursor: inside *code*)."""
    if name == "code":
        return st.sampled_from(HARMLESS_CODE)
    if name == "cursor_pos":
        return st.one_of(st.none(), st.integers(0, len(code) if type(code) is str else 0))
    simple = {"value": st.text(max_size=5), "msg_id": st.text(max_size=5),
              "user_expressions": st.one_of(st.none(), st.dictionaries(
                  st.text(max_size=3), st.sampled_from(HARMLESS_CODE), max_size=2)),
              "detail_level": st.integers(0, 1), "hist_access_type": st.sampled_from(
                  ["tail", "range", "search"]), "n": st.integers(0, 20),
              "session": st.integers(-2, 2), "start": st.integers(0, 3), "stop": st.integers(0, 5),
              "pattern": st.sampled_from(["*", "x*", "?"]), "since": st.integers(-5, 50),
              "limit": st.integers(0, 5), "kernel_name": st.sampled_from(["python3", "nope"]),
              "msg_type": st.sampled_from(["comm_open", "comm_msg", "comm_close"]),
              "content": st.just({"comm_id": "fuzz", "target_name": "no.such.target", "data": {}}),
              "metadata": st.one_of(st.none(), st.just({"version": "1"})),
              "buffers": st.one_of(st.none(), st.lists(st.binary(max_size=3), max_size=2)),
              "target_name": st.one_of(st.none(), st.text(max_size=5))}
    if name in simple:
        return simple[name]
    return st.booleans() if KINDS[name](True, None) else st.none()


def wrong_value(name, code):
    """A value *name* does not accept."""
    return st.one_of(values, st.binary(max_size=4), st.integers(-2**70, 2**70),
                     st.sampled_from([-1, 2, 2**31, 2**53 + 1, 10**30])).filter(
        lambda v: not KINDS[name](v, code))


unknown_names = st.one_of(st.sampled_from(["host", "kernel", "self", "kwargs", "timeout", "x"]),
                          st.text(min_size=1, max_size=8))


@st.composite
def wrong_calls(draw, table):
    """(procedure, args, kwargs, fault) with at least one fault the procedure must refuse."""
    name = draw(st.sampled_from(sorted(table)))
    required, optional = table[name]
    faults = ["extra positional", "unknown keyword"] + ["missing"] * bool(required) + [
        "wrong type"] * bool(required or optional)
    fault = draw(st.sampled_from(faults))
    code = draw(st.sampled_from(HARMLESS_CODE))
    chosen = {n: code if n == "code" else draw(valid_value(n, code))
              for n in required + [o for o in optional if draw(st.booleans())]}
    if fault == "wrong type":
        victim = draw(st.sampled_from(required + optional))
        chosen[victim] = draw(wrong_value(victim, chosen.get("code", code)))
    if fault == "missing":
        del chosen[draw(st.sampled_from(required))]
    kwargs = {n: v for n, v in chosen.items() if n not in required or draw(st.booleans())}
    args = [chosen[n] for n in required if n in chosen and n not in kwargs]
    if args != [chosen[n] for n in required[:len(args)]]:  # positional order must hold
        kwargs.update({n: chosen[n] for n in required if n in chosen})
        args = []
    if fault == "extra positional":
        args = [chosen[n] for n in required] + draw(st.lists(values, min_size=1, max_size=2))
        kwargs = {n: v for n, v in kwargs.items() if n not in required}
        if len(args) <= len(required) + len(optional):  # the extra ones fill optionals: wrong type
            args += [object_of_no_kind()] * (len(required) + len(optional) + 1 - len(args))
    if fault == "unknown keyword":
        extra = draw(unknown_names.filter(lambda n: n not in required + optional
                                          and n != "details"))
        kwargs[extra] = draw(values)
    return name, args, kwargs, fault


def object_of_no_kind():
    return {"not": "a valid argument"}


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(50)
@given(call=wrong_calls(KERNEL_PROCEDURES))
def test_wrong_arguments_of_kernel_procedures(service, healthy, callers, transport, serializer,
                                              call):
    """Wrong types, unknown keywords, missing and extra arguments: invalid_argument, at once."""
    name, args, kwargs, fault = call
    reply = answer(callers[transport, serializer], uri(healthy[1]["id"], name), args, kwargs)
    assert reply[:5] == [ERROR, CALL, 7, {}, "wamp.error.invalid_argument"], (fault, reply)
    assert reply[5][0], "the error says which argument is wrong"
    undisturbed(healthy)


@pytest.mark.parametrize("transport,serializer", [(WEBSOCKET, "cbor"), (RAWSOCKET, "json")])
@fuzz_settings(25)
@given(call=wrong_calls(HOST_PROCEDURES))
def test_wrong_arguments_of_host_procedures(service, healthy, callers, transport, serializer,
                                            call):
    """kernelspecs, kernels.list and kernels.start called wrongly: invalid_argument."""
    name, args, kwargs, fault = call
    reply = answer(callers[transport, serializer], name, args, kwargs)
    assert reply[:5] == [ERROR, CALL, 7, {}, "wamp.error.invalid_argument"], (fault, reply)
    undisturbed(healthy)


# -- random arguments ------------------------------------------------------------------------------

def harmless(name, args, kwargs):
    """The call with any code made harmless, and lifecycle calls kept invalid."""
    args = [HARMLESS_CODE[len(a) % len(HARMLESS_CODE)] if type(a) is str else a for a in args]
    if "code" in kwargs and type(kwargs["code"]) is str:
        kwargs["code"] = HARMLESS_CODE[len(kwargs["code"]) % len(HARMLESS_CODE)]
    if type(kwargs.get("user_expressions")) is dict:  # the kernel evaluates them: make them x
        kwargs["user_expressions"] = {k: "x" if type(v) is str else v
                                      for k, v in kwargs["user_expressions"].items()}
    if name in ("shutdown", "restart", "interrupt") and not (args or kwargs):
        args = [None]  # with no arguments they would (rightly) act on the kernel
    return args, kwargs


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(40)
@given(name=st.sampled_from(sorted(KERNEL_PROCEDURES)), args=st.lists(values, max_size=3),
       kwargs=st.dictionaries(st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=6)),
                              values, max_size=3).map(lambda d: {k: v for k, v in d.items()
                                                                 if k != "details"}))
def test_random_arguments(service, healthy, callers, transport, serializer, name, args, kwargs):
    """Any arguments: a RESULT or a documented error, at once."""
    args, kwargs = harmless(name, args, kwargs)
    reply = answer(callers[transport, serializer], uri(healthy[1]["id"], name), args, kwargs)
    assert reply[0] == RESULT or reply[4] in DOCUMENTED, reply
    undisturbed(healthy)


# -- unknown kernels, unknown procedures ---------------------------------------------------------

malformed_ids = st.one_of(
    st.text(max_size=40), st.uuids().map(lambda u: u.hex.upper()), st.uuids().map(str),
    st.uuids().map(lambda u: u.hex[:-1]), st.sampled_from(["", ".", "a b", "#", "..", "\n"]))


def loose_uri(uri):
    """The spec's loose rule (docs/protocol.md): non-empty components without whitespace or #."""
    return all(part and not re.search(r"[\s#]", part) for part in uri.split("."))


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@fuzz_settings(30)
@given(kernel_id=st.one_of(st.uuids(version=4).map(lambda u: u.hex), malformed_ids),
       name=st.one_of(st.sampled_from(sorted(KERNEL_PROCEDURES)), st.text(max_size=8)),
       args=st.lists(values, max_size=2))
def test_unknown_kernel_ids(service, healthy, callers, transport, serializer, kernel_id, name,
                           args):
    """A kernel id no host has: no_such_kernel; an id that breaks the URI rules: invalid_uri."""
    procedure = uri(kernel_id, name)
    reply = answer(callers[transport, serializer], procedure, args, None)
    if not loose_uri(procedure):
        expected = "wamp.error.invalid_uri"
    elif procedure.split(".")[2] == healthy[1]["id"]:
        expected = "wamp.error.no_such_procedure"  # ours, with more components after the name
    else:
        expected = "webkernel.error.no_such_kernel"
    assert reply[:5] == [ERROR, CALL, 7, {}, expected], reply
    undisturbed(healthy)


@fuzz_settings(20)
@given(name=st.text(min_size=1, max_size=12).filter(
    lambda n: loose_uri(n) and n.split(".")[0] not in KERNEL_PROCEDURES))
def test_unknown_procedures_of_a_kernel(service, healthy, callers, name):
    """A procedure the real kernel does not have: no_such_procedure, naming the ones it has."""
    reply = answer(callers[RAWSOCKET, "msgpack"], uri(healthy[1]["id"], name), [], None)
    assert reply[:5] == [ERROR, CALL, 7, {}, "wamp.error.no_such_procedure"], reply
    assert "eval_cell" in reply[5][0]
    undisturbed(healthy)


# -- JSON-RPC ----------------------------------------------------------------------------------------

JSONRPC_METHODS = ["eval_cell", "execute", "get_stdout", "get_stderr", "get_output", "status",
                   "wait", "input", "complete", "interrupt", "restart", "start_kernel", "kernels",
                   "shutdown"]
#: docs/clients.md's JSON-RPC error codes, without -32603 (internal error: a bug)
JSONRPC_CODES = {-32700, -32600, -32601, -32602, *range(-32007, -31999), -32099}


def jsonrpc_requests():
    request = st.fixed_dictionaries(
        {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", 2])},
        optional={"method": st.one_of(st.sampled_from(JSONRPC_METHODS), st.text(max_size=8), values),
                  "params": st.one_of(st.lists(values, max_size=3),
                                      st.dictionaries(st.text(max_size=8), values, max_size=3), values),
                  "id": st.one_of(st.integers(), st.text(max_size=4), st.none(), values)})
    return st.one_of(request, st.lists(request, max_size=3))


def post(port, body):
    """(HTTP status, decoded body or None) of POST /jsonrpc."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/jsonrpc", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, (json.loads(raw) if raw else None)


@pytest.fixture
def jsonrpc_used(service):
    """The JSON-RPC endpoint's own WAMP session (made on first use) is there before the baseline."""
    assert post(service.port, b'{"jsonrpc": "2.0", "method": "kernels", "id": 1}')[0] == 200


@fuzz_settings(40)
@given(body=st.one_of(st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode()),
                      jsonrpc_requests().map(lambda r: json.dumps(r).encode())))
def test_jsonrpc_bodies(service, jsonrpc_used, healthy, body):
    """Any body posted to /jsonrpc gets a JSON-RPC answer with a documented code, never a 5xx."""
    status, response = post(service.port, body)
    assert status in (200, 204), (status, response)
    for item in (response if type(response) is list else [response] if response else []):
        assert item["jsonrpc"] == "2.0", item
        if "error" in item:
            assert item["error"]["code"] in JSONRPC_CODES, item
    undisturbed(healthy)


def test_the_kernel_was_never_disturbed(service, healthy):
    """After all that, the kernel is the one started first, with its state, and answers."""
    session, model = healthy
    assert session.call(uri(model["id"], "eval_cell"), ["1+1"])[0] == ["2"]
    assert session.call(uri(model["id"], "eval_cell"), ["x + 1"])[0] == ["42"]
    undisturbed(healthy)
    assert "Traceback" not in service.log(), service.log()[-8000:]
