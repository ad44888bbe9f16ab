"""
The floor of the kernel benchmark: a kernel driven directly over ZeroMQ by jupyter_client.

The driver (``kernel_bench.py``) starts this script as a child process with the
project's Python and talks to it in JSON lines (as with the other workers):
commands on stdin, events on stdout.  At start it runs
``KernelManager.start_kernel`` for the ``python3`` kernelspec and a
``BlockingKernelClient``, waits until the kernel is ready and writes
``{"event": "ready", "kernel_pid": …}``.  Then:

* ``{"command": "latency", "runs": N}``: N sequential ``1+1`` executions, each
  timed from ``execute()`` until both its ``execute_reply`` (shell) and its
  ``status: idle`` (iopub) are in hand; answers ``{"event": "latency", "seconds": […]}``.
* ``{"command": "stream", "lines": N}``: the stream cell; answers
  ``{"event": "stream", "lines_seconds", "done_seconds", "received", "missing", "disorder",
  "client_cpu"}`` (``lines_seconds``: until every line was in hand; ``done_seconds``: until
  reply and idle; ``client_cpu``: this process's CPU seconds meanwhile).

The end of stdin shuts the kernel down (``shutdown_kernel``) and exits.  The
client is single-threaded and blocking, polling the shell and iopub sockets
together: nothing sits between it and the kernel.
"""

import json
import sys
import time

import zmq
from jupyter_client.manager import KernelManager

from kernel_cells import KERNEL_NAME, LATENCY_CODE, LineCounter, check_latency_result, stream_code

TIMEOUT = 300.0


class Timeout(Exception):
    pass


def send(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def run(client, code, on_output=None):
    """Execute ``code``; (reply, outputs) once its reply and idle are in hand."""
    shell, iopub = client.shell_channel, client.iopub_channel
    poller = zmq.Poller()
    poller.register(shell.socket, zmq.POLLIN)
    poller.register(iopub.socket, zmq.POLLIN)
    msg_id = client.execute(code)
    reply, idle, outputs = None, False, []
    deadline = time.monotonic() + TIMEOUT
    while reply is None or not idle:
        if time.monotonic() > deadline:
            raise Timeout(f"no reply and idle for {code[:40]!r} within {TIMEOUT:g} s")
        ready = dict(poller.poll(1000))
        while iopub.msg_ready():
            msg = iopub.get_msg(timeout=0)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msg_type, content = msg["header"]["msg_type"], msg["content"]
            outputs.append((msg_type, content))
            if on_output is not None:
                on_output(msg_type, content)
            if msg_type == "status" and content.get("execution_state") == "idle":
                idle = True
        if shell.socket in ready or shell.msg_ready():
            while shell.msg_ready():
                msg = shell.get_msg(timeout=0)
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply = msg
    return reply, outputs


def latency(client, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        reply, outputs = run(client, LATENCY_CODE)
        samples.append(time.perf_counter() - start)
        check_latency_result(reply["content"].get("status"), outputs)
    return samples


def stream(client, lines):
    counter = LineCounter(lines)
    cpu = time.process_time()
    start = time.monotonic()
    reply, _ = run(client, stream_code(lines), counter.feed_output)
    done = time.monotonic()
    return {
        "client_cpu": time.process_time() - cpu,
        "lines_seconds": counter.complete_at - start if counter.complete else None,
        "done_seconds": done - start,
        "received": counter.distinct, "missing": counter.missing, "disorder": counter.disorder,
        "status": reply["content"].get("status"),
    }


def main():
    manager = KernelManager(kernel_name=KERNEL_NAME)
    manager.start_kernel()
    client = None
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        send(event="ready", kernel_pid=manager.provisioner.process.pid)
        for line in sys.stdin:
            command = json.loads(line)
            if command["command"] == "latency":
                send(event="latency", seconds=latency(client, command["runs"]))
            elif command["command"] == "stream":
                send(event="stream", **stream(client, command["lines"]))
    finally:
        if client is not None:
            client.stop_channels()
        manager.shutdown_kernel(now=False)


if __name__ == "__main__":
    main()
