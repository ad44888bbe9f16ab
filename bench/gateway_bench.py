"""The gateway API, timed: webkernel against Jupyter Kernel Gateway, with the same script.

For one gateway (``--url``, ``--token``) it does what jupyter_server's
GatewayClient does, over the same REST API and kernel WebSocket (legacy
JSON protocol): start a kernel (``POST /api/kernels`` until 201), open
``/api/kernels/<id>/channels``, then

* latency: ``--rounds`` executions of ``pass``, each timed from the
  ``execute_request`` sent to its ``execute_reply`` and ``idle`` both in;
* streaming: a cell printing ``--lines`` lines of ``--width`` characters,
  timed to its ``idle``, with the bytes of stdout received;

and shuts the kernel down. Prints one JSON object (medians, p95, MB/s).
``bench/run_gateway_bench.sh`` runs it against both and writes the table.
"""

import argparse
import json
import statistics
import time
import urllib.request
import uuid

import websocket


def rest(base, token, method, path, body=None):
    headers = {"Authorization": f"token {token}"}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw.strip() else None


class Channels:
    def __init__(self, url, token):
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"],
                                              timeout=120)
        self.session = uuid.uuid4().hex

    def execute(self, code):
        """Run *code*; (seconds to reply and idle, stdout bytes received)."""
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                  "username": "bench", "version": "5.3", "date": ""}
        started = time.perf_counter()
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                 "content": {"code": code, "silent": False}, "channel": "shell",
                                 "buffers": []}))
        replied = idle = False
        stdout = 0
        while not (replied and idle):
            msg = json.loads(self.ws.recv())
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"] if "msg_type" in msg else msg["header"]["msg_type"]
            if kind == "stream":
                stdout += len(msg["content"]["text"])
            replied = replied or kind == "execute_reply"
            idle = idle or (kind == "status" and msg["content"]["execution_state"] == "idle")
        return time.perf_counter() - started, stdout


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--name", default="gateway")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--width", type=int, default=80)
    args = parser.parse_args()
    base = args.url.rstrip("/")
    started = time.perf_counter()
    status, model = rest(base, args.token, "POST", "/api/kernels", {"name": "python3", "env": {}})
    start_seconds = time.perf_counter() - started
    assert status == 201, (status, model)
    try:
        channels = Channels(base.replace("http", "ws", 1) + f"/api/kernels/{model['id']}/channels",
                            args.token)
        channels.execute("pass")   # warm-up
        latencies = [channels.execute("pass")[0] for _ in range(args.rounds)]
        line = "x" * (args.width - 1)
        seconds, received = channels.execute(
            f"import sys\nfor i in range({args.lines}): sys.stdout.write({line!r} + '\\n')")
        expected = args.lines * args.width
        assert received == expected, (received, expected)
    finally:
        rest(base, args.token, "DELETE", f"/api/kernels/{model['id']}")
    print(json.dumps({
        "name": args.name, "start_s": round(start_seconds, 3),
        "rounds": args.rounds, "latency_median_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "stream_bytes": received, "stream_s": round(seconds, 3),
        "stream_mb_s": round(received / seconds / 1e6, 2),
    }))


if __name__ == "__main__":
    main()
