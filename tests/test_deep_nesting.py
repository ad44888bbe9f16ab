"""Deeply nested payloads: each decoder's depth limit is a protocol violation; within it the router routes without recursing."""

import broker  # noqa: F401  (first: selects Twisted for txaio before Autobahn's serializers load)
import cbor2
import msgpack
from autobahn.wamp import message
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from twisted.trial.unittest import SynchronousTestCase

from broker.errors import ProtocolViolation
from broker.router import wire
from broker.testing import MemoryRouter


def msgpack_call_with_depth(depth, request=1):
    """A MessagePack CALL whose one argument is *depth* nested arrays (built as bytes: the packer stops at 511)."""
    head = msgpack.packb([48, request, {}, "com.example.deep"])
    return b"\x95" + head[1:] + b"\x91" + b"\x91" * (depth - 1) + b"\x90"


class DecoderDepthTests(SynchronousTestCase):
    """Past a serializer's depth the payload is a protocol violation, never an exception of the decoder."""

    def test_each_serializer_refuses_past_its_depth(self):
        """JSON 100,000 deep, MessagePack 3,000 deep and CBOR 1,000 deep are protocol violations."""
        json_payload = b'[48, 1, {}, "com.example.deep", [' + b"[" * 100_000 + b"]" * 100_000 + b"]]"
        deep = []
        for _ in range(1000):
            deep = [deep]
        cbor_payload = cbor2.dumps([48, 1, {}, "com.example.deep", [deep]])
        for serializer, payload, binary in [(JsonSerializer(), json_payload, False),
                                            (MsgPackSerializer(), msgpack_call_with_depth(3000), True),
                                            (CBORSerializer(), cbor_payload, True)]:
            with self.assertRaises(ProtocolViolation, msg=serializer.SERIALIZER_ID):
                wire.decode(serializer, payload, is_binary=binary)


class RoutingDepthTests(SynchronousTestCase):
    """A payload nested 1,000 deep (as MessagePack allows) is routed like any other."""

    def test_a_deep_call_reaches_its_callee(self):
        """The router hands a 1,000-deep argument to the callee without recursing into it."""
        memory = MemoryRouter()
        callee, caller = memory.joined(), memory.joined()
        callee.send(message.Register(1, "com.example.deep"))
        memory.clock.advance(0)
        callee.take()
        [call] = wire.decode(MsgPackSerializer(), msgpack_call_with_depth(1000), is_binary=True)
        caller.send(call)
        memory.clock.advance(0)
        [invocation] = callee.take()
        self.assertIsInstance(invocation, message.Invocation)
        self.assertEqual(caller.take(), [])
        self.assertEqual(self.flushLoggedErrors(), [])
