"""Property-based tests: random and malformed input never escapes the session it came from.

Random payloads go through the real decoding (Autobahn's serializers and
message classes, then :mod:`broker.router.wire`) into a joined session of a
:class:`~broker.testing.MemoryRouter`. Whatever arrives, the router raises
nothing, answers with an ERROR or closes that session with ABORT, and a second,
healthy session keeps getting its calls answered.
"""

import json

import broker  # noqa: F401  (first: selects Twisted for txaio before Autobahn's serializers load)
import msgpack
from autobahn.wamp import message
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from broker.errors import ProtocolViolation
from broker.router.wire import InvalidRequestUri, decode
from broker.testing import MemoryRouter

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60), st.floats(allow_nan=False),
                    st.text(max_size=20), st.sampled_from(["com.x", "wamp.session.count", "", ".", "a..b"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
message_types = st.sampled_from([1, 2, 3, 4, 5, 6, 8, 16, 17, 32, 33, 34, 35, 36, 48, 49, 50, 64, 65,
                                 66, 67, 68, 69, 70, 99, -1, 2**40])
wamp_like = st.builds(lambda kind, rest: [kind, *rest], message_types, st.lists(values, max_size=6))


ids = st.integers(0, 2**53 + 1)
uris = st.one_of(st.sampled_from(["com.x", "com.x.y", "com", "wamp.session.get", "webkernel.k",
                                  "wamp.registration.match", "", "com..y", "com.x."]), st.text(max_size=12))
option_keys = st.sampled_from(["match", "invoke", "timeout", "receive_progress", "exclude", "eligible",
                               "exclude_me", "acknowledge", "mode", "disclose_me", "eligible_authid",
                               "exclude_authrole", "progress", "concurrency"])
options = st.dictionaries(option_keys, st.one_of(values, st.sampled_from(
    ["prefix", "wildcard", "exact", "roundrobin", "random", "kill", "skip", "killnowait"])), max_size=4)
args = st.one_of(st.none(), st.lists(values, max_size=3))
requests = st.one_of(
    st.builds(lambda r, o, u, a: [48, r, o, u] + ([a] if a is not None else []), ids, options, uris, args),
    st.builds(lambda r, o, u, a: [16, r, o, u] + ([a] if a is not None else []), ids, options, uris, args),
    st.builds(lambda r, o, u: [32, r, o, u], ids, options, uris),
    st.builds(lambda r, o, u: [64, r, o, u], ids, options, uris),
    st.builds(lambda r, i: [34, r, i], ids, ids),
    st.builds(lambda r, i: [66, r, i], ids, ids),
    st.builds(lambda r, o: [49, r, o], ids, options),
    st.builds(lambda r, o, a: [70, r, o] + ([a] if a is not None else []), ids, options, args),
    st.builds(lambda r, o, u: [8, 68, r, o, u], ids, options, uris),
    st.builds(lambda o, u: [6, o, u], options, uris),
)


def feed(client, items):
    """What a transport does with decoded items."""
    for item in items:
        if isinstance(item, InvalidRequestUri):
            client.session.bad_request(item.request_type, item.request, item.reason)
        else:
            client.session.message_received(item)


class RandomInputTests(SynchronousTestCase):
    """The router survives anything a peer can send."""

    def check_isolated(self, payload, serializer):
        self.check_sequence([payload], serializer)

    def check_sequence(self, payloads, serializer):
        router = MemoryRouter()
        healthy = router.joined()
        victim = router.joined()
        for payload in payloads:
            try:
                items = decode(serializer, payload, serializer._serializer.BINARY)
            except ProtocolViolation:
                break  # the transport closes the connection with ABORT
            feed(victim, items)
            router.clock.advance(60)  # let call timeouts fire
        for reply in victim.take():
            self.assertIsInstance(reply, (message.Error, message.Abort, message.Result,
                                          message.Registered, message.Subscribed, message.Published,
                                          message.Unregistered, message.Unsubscribed,
                                          message.Goodbye, message.Event, message.Invocation))
        healthy.send(message.Call(1, "wamp.session.count"))
        self.assertIsInstance(healthy.take()[-1], message.Result)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(wamp_like)
    def test_random_json_messages(self, raw):
        """Random message-shaped JSON is answered or refused, never raised."""
        self.check_isolated(json.dumps(raw).encode(), JsonSerializer())

    @settings(max_examples=300, deadline=None)
    @given(wamp_like)
    def test_random_msgpack_messages(self, raw):
        """Random message-shaped MessagePack is answered or refused, never raised."""
        self.check_isolated(msgpack.packb(raw), MsgPackSerializer())

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(requests, min_size=1, max_size=8))
    def test_random_request_sequences(self, raws):
        """Sequences of well-shaped requests with random options, URIs and ids never raise."""
        self.check_sequence([json.dumps(raw).encode() for raw in raws], JsonSerializer())

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=64))
    def test_random_bytes(self, payload):
        """Random bytes are a protocol violation or a refused message, never a crash."""
        self.check_isolated(payload, MsgPackSerializer())
        self.check_isolated(payload, JsonSerializer())
