"""Bytes to WAMP messages, with errors a peer can act on.

Autobahn's serializers and message classes do the work; this module decides
what a failure means. A payload that is not a WAMP message is a protocol
violation (the session is closed with ABORT). A well-formed request whose URI
breaks the rules is answered with ``wamp.error.invalid_uri`` and the session
goes on, as the spec asks.
"""

import re

from autobahn.wamp.exception import InvalidUriError, ProtocolError
from autobahn.wamp.serializer import Serializer

from broker.errors import ProtocolViolation

# message types whose second element is a request id that ERROR may answer
_REQUESTS = (16, 32, 34, 48, 64, 66)
_PUBLISH = 16
# a JSON escape of a UTF-16 surrogate (paired ones decode to one character)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidRequestUri:
    """A request the router answers with ``wamp.error.invalid_uri``.

    ``answer`` is false for a PUBLISH without ``acknowledge``: its publisher
    expects no reply, so the router only logs it.
    """

    __slots__ = ("request_type", "request", "reason", "answer")

    def __init__(self, request_type, request, reason, answer=True):
        self.request_type, self.request, self.reason = request_type, request, reason
        self.answer = answer


def decode(serializer, payload, is_binary=None):
    """Parse one transport payload into a list of messages.

    Items are message objects, or :class:`InvalidRequestUri` for requests to
    answer with an error. Raises :class:`ProtocolViolation` for anything else
    malformed.
    """
    inner = serializer._serializer
    if is_binary is not None and is_binary != inner.BINARY:
        kind = "binary" if is_binary else "text"
        raise ProtocolViolation(f"a {kind} message on a {serializer.SERIALIZER_ID} session")
    try:
        raw_messages = inner.unserialize(payload)
    except Exception as e:
        raise ProtocolViolation(f"payload is not valid {serializer.SERIALIZER_ID}: {e}")
    if not inner.BINARY and _SURROGATE_ESCAPE.search(payload) and _lone_surrogate(raw_messages):
        raise ProtocolViolation(
            f"payload is not valid {serializer.SERIALIZER_ID}: a string holds an unpaired "
            "surrogate escape (\\ud800-\\udfff), which is not Unicode text")
    return [_parse(raw) for raw in raw_messages]


def _lone_surrogate(value):
    """True if a decoded JSON value holds a string with an unpaired surrogate.

    JSON may escape one (``"\\ud800"``); no serializer can send it on (UTF-8
    has no encoding for it), so it must not enter the router.
    """
    stack = [value]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            if _SURROGATE.search(value):
                return True
        elif kind is list:
            stack.extend(value)
        elif kind is dict:
            stack.extend(value)
            stack.extend(value.values())
    return False


def _parse(raw):
    if type(raw) is not list or not raw or type(raw[0]) is not int:
        raise ProtocolViolation("a WAMP message must be a list starting with an integer type")
    klass = Serializer.MESSAGE_TYPE_MAP.get(raw[0])
    if klass is None:
        raise ProtocolViolation(f"unknown WAMP message type {raw[0]}")
    try:
        return klass.parse(raw)
    except InvalidUriError as e:
        if raw[0] in _REQUESTS and len(raw) > 1 and type(raw[1]) is int:
            return InvalidRequestUri(raw[0], raw[1], str(e), _expects_answer(raw))
        raise ProtocolViolation(str(e))
    except ProtocolError as e:
        raise ProtocolViolation(str(e))
    except Exception as e:  # parse() asserts and raises assorted errors on bad shapes
        raise ProtocolViolation(f"malformed {klass.__name__.upper()}: {e!r}")


def _expects_answer(raw):
    """False for a PUBLISH that did not ask for acknowledgement."""
    if raw[0] != _PUBLISH:
        return True
    options = raw[2] if len(raw) > 2 else None
    return type(options) is dict and options.get("acknowledge") is True


def encode(serializer, msg):
    """The bytes of *msg* (cached on the message per serializer)."""
    return msg.serialize(serializer._serializer)
