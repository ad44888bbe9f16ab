"""
The service's CPU per kernel output, from the iopub frames to the caller's bytes, in one process.

No kernel, no socket, no reactor: a real :class:`KernelHost` attached in-process to a real
router (``broker.testing.MemoryRouter``, on a ``task.Clock``), a kernel on
``FakeKernelChannels`` started through the API, and one caller that runs ``execute`` with
``receive_progress`` (optionally also subscribed to the kernel's iopub topics) and whose
channel encodes everything it is sent with the WebSocket JSON (or MessagePack) serializer,
as the real transport does.  ``--batch N``: N iopub messages reach the service in one
turn of the reactor (stream text of one turn goes to the caller as one progressive result,
see ``broker/kernel/progress.py``).  The driver plays the kernel: it signs each ``stream`` message
into ZeroMQ frames beforehand (as ipykernel would), and then, timed, verifies and unpacks
them (``VerifyingSession.deserialize``, as ``KernelChannels`` does) and hands them to the
host.  Reported: CPU microseconds per output (median of ``--repeat`` runs), and with
``--cprofile FILE`` the stats of one more run (``profile_summary.py FILE`` ranks them).

This measures what the service itself spends per output, without the noise of a shared
machine; ``kernel_bench.py`` measures the whole path against Jupyter Server.

    .venv/bin/python bench/output_path_bench.py --outputs 20000 --repeat 5
"""

import argparse
import cProfile
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autobahn.wamp import message, types  # noqa: E402
from jupyter_client.session import Session  # noqa: E402
from twisted.internet import defer  # noqa: E402
from zope.interface import implementer  # noqa: E402

from broker.auth import KERNEL_HOST_ROLE, Principal  # noqa: E402
from broker.kernel import uris  # noqa: E402
from broker.kernel.host import KernelHost  # noqa: E402
from broker.kernel.interfaces import IKernelLauncher  # noqa: E402
from broker.kernel.testing import FakeKernelChannels  # noqa: E402
from broker.kernel.zmq_channels import session_for  # noqa: E402
from broker.router.local import attach  # noqa: E402
from broker.router.wire import encode  # noqa: E402
from broker.testing import MemoryRouter  # noqa: E402
from broker.transport import WEBSOCKET_SERIALIZERS  # noqa: E402

KEY = "bench-key-" + "k" * 22
KERNEL_INFO = {"status": "ok", "protocol_version": "5.3", "implementation": "ipython",
               "language_info": {"name": "python"}}
SERIALIZERS = {"json": "wamp.2.json", "msgpack": "wamp.2.msgpack"}


class _Launched:
    """A pretend kernel process (it never exits here)."""

    def __init__(self, kernel_id, kernel_name):
        self.kernel_id, self.kernel_name, self.pid = kernel_id, kernel_name, 4242
        self.connection_info = {"key": KEY, "kernel_name": kernel_name}
        self.interrupt_mode = "signal"
        self.exited = defer.Deferred()

    def stop_watching(self):
        pass

    def signal(self, name):
        return True

    def remove_files(self):
        pass

    def output_tail(self):
        return ""


@implementer(IKernelLauncher)
class _Launcher:
    def kernelspecs(self):
        return {"default": "python3", "kernelspecs": {"python3": {
            "name": "python3", "spec": {"display_name": "python3", "language": "python"}}}}

    def launch(self, kernel_name, kernel_id, owner=None):
        return defer.succeed(_Launched(kernel_id, kernel_name))

    def adopt(self, kernel_name, kernel_id, pid, poll_interval=1.0):
        return defer.fail(RuntimeError("no adoption here"))


class EncodingChannel:
    """A caller's channel: encodes each message as the WebSocket transport would; counts them."""

    peer = "bench"

    def __init__(self, serializer):
        self.serializer = serializer
        self.messages = 0
        self.bytes = 0
        self.progress = 0
        self.final = None
        self.closed = False

    def send(self, msg):
        self.messages += 1
        self.bytes += len(encode(self.serializer, msg))
        if type(msg) is message.Result:
            if msg.progress:
                self.progress += 1
            else:
                self.final = msg

    def close(self):
        self.closed = True


class Service:
    """The host, the router, one ready kernel and one caller."""

    def __init__(self, serializer, subscribe):
        self.memory = MemoryRouter(realm="webkernel")
        self.clock = self.memory.clock
        self.made = []
        self.host = KernelHost(types.ComponentConfig(realm="webkernel"), _Launcher(),
                               self._channels, self.clock)
        attach(self.memory.router, self.host, Principal("host", KERNEL_HOST_ROLE, "local"),
               self.clock)
        self.settle()
        self.channel = EncodingChannel(WEBSOCKET_SERIALIZERS[SERIALIZERS[serializer]])
        self.caller = self.memory.router.new_session(self.channel)
        self.requests = 0
        self.send(message.Hello("webkernel", _roles()))
        self.send(message.Call(self._request(), uris.KERNELS_START))
        self.settle()
        self.kernel_channels = self.made[-1]
        self.kernel_channels.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        self.kernel_id = next(iter(self.host.kernels))
        if subscribe:
            self.send(message.Subscribe(self._request(), uris.kernel_topic(self.kernel_id, "iopub"),
                                        match="prefix"))
        self.verifying = session_for({"key": KEY})

    def _channels(self, connection_info, on_message, kernel_id):
        channels = FakeKernelChannels(on_message)
        self.made.append(channels)
        return channels

    def _request(self):
        self.requests += 1
        return self.requests

    def send(self, msg):
        self.caller.message_received(msg)

    def settle(self):
        while any(c.getTime() <= self.clock.seconds() for c in self.clock.getDelayedCalls()):
            self.clock.advance(0)

    def execute(self):
        """Start an execute with progress; the execute_request the kernel got."""
        self.send(message.Call(self._request(), uris.kernel_procedure(self.kernel_id, "execute"),
                               kwargs={"code": "for i in range(N): print(i, flush=True)"},
                               receive_progress=True))
        self.settle()
        return [m for c, m in self.kernel_channels.sent if m["msg_type"] == "execute_request"][-1]


def _roles():
    from broker.testing import CLIENT_ROLES
    return CLIENT_ROLES


def kernel_frames(request, outputs):
    """The signed iopub frames of one execution: busy, *outputs* stream lines, idle, and the reply."""
    kernel = Session(key=KEY.encode(), username="kernel")
    parent = request

    def frames(msg_type, content):
        return kernel.serialize(kernel.msg(msg_type, content, parent=parent))[1:]

    stream = [frames("status", {"execution_state": "busy"})]
    stream += [frames("stream", {"name": "stdout", "text": f"{n}\n"}) for n in range(outputs)]
    stream.append(frames("status", {"execution_state": "idle"}))
    reply = frames("execute_reply", {"status": "ok", "execution_count": 1, "user_expressions": {}})
    return stream, reply


def run_once(service, outputs, batch=1, profiler=None):
    """CPU seconds to take one execution's iopub frames through the service."""
    request = service.execute()
    stream, reply = kernel_frames(request, outputs)
    on_message = service.kernel_channels.on_message
    deserialize = service.verifying.deserialize
    before = service.channel.progress
    if profiler is not None:
        profiler.enable()
    start = time.process_time()
    for index, frames in enumerate(stream, 1):
        on_message("iopub", deserialize(frames))
        if index % batch == 0:
            service.settle()  # the end of a reactor turn
    on_message("shell", deserialize(reply))
    service.settle()
    spent = time.process_time() - start
    if profiler is not None:
        profiler.disable()
    got = service.channel.progress - before
    if got > outputs + 2 or (batch == 1 and got != outputs + 2):
        raise SystemExit(f"the caller got {got} progressive results for {outputs + 2} outputs")
    return spent, got


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--outputs", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--serializer", choices=sorted(SERIALIZERS), default="json")
    parser.add_argument("--subscribe", action="store_true",
                        help="the caller also subscribes to the kernel's iopub topics (prefix)")
    parser.add_argument("--batch", type=int, default=1,
                        help="iopub messages arriving in one reactor turn (default: %(default)s,"
                             " a service that keeps up with the kernel)")
    parser.add_argument("--cprofile", metavar="FILE", help="profile one more run into FILE")
    options = parser.parse_args()
    service = Service(options.serializer, options.subscribe)
    run_once(service, 500)  # warm-up
    runs = [run_once(service, options.outputs, options.batch) for _ in range(options.repeat)]
    per_output = [spent / (options.outputs + 2) * 1e6 for spent, _ in runs]
    print(f"{options.outputs} outputs x {options.repeat}, {options.serializer}"
          f"{', subscribed' if options.subscribe else ''}, {options.batch} per turn"
          f" ({runs[0][1]} progressive results): service CPU per output"
          f" median {statistics.median(per_output):.1f} us"
          f" (min {min(per_output):.1f}, max {max(per_output):.1f});"
          f" caller bytes per output {service.channel.bytes / service.channel.messages:.0f}")
    if options.cprofile:
        profiler = cProfile.Profile()
        run_once(service, options.outputs, options.batch, profiler)
        profiler.dump_stats(options.cprofile)
        print(f"profile: {options.cprofile}")


if __name__ == "__main__":
    main()
