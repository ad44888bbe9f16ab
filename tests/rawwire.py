"""Hand-made WebSocket and RawSocket peers for feeding the service bad input.

A real client library refuses to send malformed frames, so these tests speak
the wire formats directly over a blocking socket with a timeout.
"""

import base64
import json
import os
import socket
import struct

TIMEOUT = 10


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return sock


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


# -- WebSocket ---------------------------------------------------------------------

def websocket(port, origin=None, protocol="wamp.2.json", host=None):
    """Open a WebSocket to /ws; return (HTTP status code, socket)."""
    sock = connect(port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", "Upgrade: websocket",
        "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Protocol: {protocol}",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            break
        response += chunk
    status = int(response.split(b" ", 2)[1]) if response else 0
    return status, sock


def ws_send(sock, payload, opcode=0x1):
    """Send one masked frame."""
    if isinstance(payload, str):
        payload = payload.encode()
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        header += bytes([0x80 | size])
    elif size < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(header + mask + masked)


def ws_recv(sock):
    """Receive one frame: (opcode, payload)."""
    first, second = recv_exactly(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", recv_exactly(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", recv_exactly(sock, 8))[0]
    return first & 0x0F, recv_exactly(sock, size)


def ws_wamp(sock, msg):
    ws_send(sock, json.dumps(msg))


def ws_wamp_recv(sock):
    opcode, payload = ws_recv(sock)
    if opcode == 0x8:
        return ["CLOSE", payload]
    return json.loads(payload)


# -- RawSocket ---------------------------------------------------------------------

def rawsocket(port, serializer=1, max_exp=0xF):
    """Open a RawSocket (serializer 1 = JSON); return (reply bytes, socket)."""
    sock = connect(port)
    sock.sendall(bytes([0x7F, (max_exp << 4) | serializer, 0, 0]))
    try:
        reply = recv_exactly(sock, 4)
    except ConnectionError:
        reply = b""
    return reply, sock


def rs_send(sock, payload):
    if isinstance(payload, (list, dict)):
        payload = json.dumps(payload).encode()
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def rs_recv(sock):
    (size,) = struct.unpack("!I", recv_exactly(sock, 4))
    return json.loads(recv_exactly(sock, size & 0xFFFFFF))


def closed(sock):
    """True if the peer closed the connection (reads until EOF, bounded)."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionError:  # reset by the peer: closed too
        return True
    except socket.timeout:
        return False
