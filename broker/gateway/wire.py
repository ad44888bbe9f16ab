"""Jupyter messages on a kernel WebSocket: making them, and their two framings.

* the legacy JSON protocol (no subprotocol; what jupyter_server's
  GatewayClient speaks): one text frame per message, a JSON object with
  ``header``, ``parent_header``, ``metadata``, ``content``, ``buffers``,
  ``channel`` and, as jupyter_server adds, ``msg_id`` and ``msg_type``.
  Binary buffers are never sent in it (a gateway client reads every frame as
  UTF-8 text): a message's ``buffers`` are left out;
* ``v1.kernel.websocket.jupyter.org``: one binary frame per message,
  little-endian 64-bit offsets, then the channel, the four JSON parts and
  the buffers (``serialize_msg_to_ws_v1`` of jupyter_server).
"""

import json
import uuid
from datetime import datetime, timezone

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
PROTOCOL_VERSION = "5.3"
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


class BadMessage(ValueError):
    """A frame from the client that is no Jupyter message (the socket is closed with 1007)."""


def now():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def make(channel, msg_type, content, parent_header, session, metadata=None, buffers=None):
    """A new Jupyter message (a fresh ``msg_id``) from the gateway's *session*."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": msg_type, "username": "webkernel",
              "session": session, "date": now(), "version": PROTOCOL_VERSION}
    return {"header": header, "msg_id": msg_id, "msg_type": msg_type,
            "parent_header": parent_header or {}, "metadata": metadata or {},
            "content": content, "buffers": list(buffers or ()), "channel": channel}


def encode_legacy(msg):
    """The text frame of *msg* (its buffers left out)."""
    return json.dumps(dict(msg, buffers=[]), default=str).encode("utf-8")


def encode_v1(msg):
    """The binary frame of *msg* in the v1 protocol."""
    parts = [json.dumps(msg[k], default=str).encode("utf-8")
             for k in ("header", "parent_header", "metadata", "content")]
    parts += [bytes(b) for b in msg.get("buffers") or ()]
    channel = msg["channel"].encode("utf-8")
    offsets = [8 * (1 + 1 + len(parts) + 1)]
    offsets.append(offsets[-1] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + channel + b"".join(parts)


def decode_legacy(payload):
    """A message from a text frame; BadMessage if it is not one."""
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadMessage(f"not JSON: {e}") from None
    return _checked(msg)


def decode_v1(payload):
    """A message from a v1 binary frame; BadMessage if it is not one."""
    try:
        count = int.from_bytes(payload[:8], "little")
        if not 3 <= count <= 1000 or len(payload) < 8 * (count + 1):
            raise BadMessage("bad v1 offsets")
        offsets = [int.from_bytes(payload[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
        parts = [payload[offsets[i]:offsets[i + 1]] for i in range(count - 1)]
        parts.append(payload[offsets[-1]:])
        channel = parts[0].decode("utf-8")
        fields = [json.loads(p) for p in parts[1:5]]
    except (ValueError, UnicodeDecodeError, IndexError) as e:
        raise BadMessage(f"not a v1 kernel message: {e}") from None
    if len(fields) < 4:
        raise BadMessage("a v1 kernel message has header, parent_header, metadata and content")
    msg = dict(zip(("header", "parent_header", "metadata", "content"), fields), channel=channel,
               buffers=[p for p in parts[5:] if p])
    return _checked(msg)


def _checked(msg):
    if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
        raise BadMessage("a kernel message is a JSON object with a header")
    if msg.get("channel") is None:   # GatewayKernelClient sends none; jupyter_server assumes shell
        msg["channel"] = "shell"
    if msg["channel"] not in CHANNELS:
        raise BadMessage(f"channel must be one of {', '.join(CHANNELS)}")
    if not isinstance(msg["header"].get("msg_type"), str):
        raise BadMessage("header.msg_type must be a string")
    if not isinstance(msg.get("content", {}), dict):
        raise BadMessage("content must be a JSON object")
    msg.setdefault("content", {})
    return msg
