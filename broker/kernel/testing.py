"""Test doubles for the kernel seams, shipped as API (like ``treq.testing``).

* :class:`FakeKernelChannels` provides IKernelChannels with no socket: it
  records what is sent, and a test delivers kernel messages with ``reply`` and
  ``publish``, shaped exactly as the real channels deliver them.
* :class:`FakeProcessReactor` is a ``MemoryReactorClock`` that records
  ``spawnProcess`` calls and hands out :class:`FakeProcess` transports a test
  can make exit, so a launcher or supervisor runs with no real process.
"""

import itertools

import attr
from jupyter_client.session import Session
from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer

from broker.kernel.errors import ChannelsClosed, UnknownChannel
from broker.kernel.interfaces import REQUEST_CHANNELS, IKernelChannels


@implementer(IKernelChannels)
class FakeKernelChannels:
    """Channels to a pretend kernel: ``sent`` holds ``(channel, msg)``; deliver with reply/publish."""

    def __init__(self, on_message, session=None):
        self.on_message = on_message
        self.session = session or Session(key=b"fake-kernel-key")
        self.sent = []
        self.nudges = []
        self.nudge_channels = []
        self.pings = []
        self.closed = False

    def send(self, channel, msg_type, content, metadata=None, parent=None, buffers=None):
        if channel not in REQUEST_CHANNELS:
            raise UnknownChannel(f"cannot send on {channel!r}")
        self._check_open()
        msg = self.session.msg(msg_type, content, parent=parent, metadata=metadata)
        msg["buffers"] = list(buffers or ())
        self.sent.append((channel, msg))
        return msg

    def reply(self, channel, request, msg_type, content, metadata=None, buffers=()):
        """Deliver a *msg_type* message on *channel* answering *request*; return it."""
        msg = self._as_received(msg_type, content, request, metadata, buffers)
        self.on_message(channel, msg)
        return msg

    def publish(self, msg_type, content, parent=None, metadata=None, buffers=()):
        """Deliver an iopub message, caused by *parent* if given; return it."""
        return self.reply("iopub", parent, msg_type, content, metadata, buffers)

    def _as_received(self, msg_type, content, parent, metadata, buffers):
        msg = self.session.msg(msg_type, content, parent=parent, metadata=metadata)
        frames = self.session.serialize(msg) + list(buffers)
        _idents, frames = self.session.feed_identities(frames)
        return self.session.deserialize(frames)

    def nudge(self, timeout=30.0, interval=0.5, channel="shell"):
        """A Deferred the test fires (with kernel_info content) from ``nudges``; ``nudge_channels`` says where each asked."""
        self._check_open()
        d = defer.Deferred()
        self.nudges.append(d)
        self.nudge_channels.append(channel)
        return d

    def ping(self):
        """A Deferred the test fires (or leaves to time out) from ``pings``."""
        self._check_open()
        d = defer.Deferred()
        self.pings.append(d)
        return d

    def close(self):
        self.closed = True
        for d in self.nudges + self.pings:
            if not d.called:
                d.errback(ChannelsClosed("closed"))

    def _check_open(self):
        if self.closed:
            raise ChannelsClosed("the fake channels are closed")


@attr.s
class SpawnedProcess:
    """The arguments of one ``spawnProcess`` call, and the fake process it made."""

    protocol = attr.ib()
    executable = attr.ib()
    args = attr.ib()
    env = attr.ib()
    path = attr.ib()
    child_fds = attr.ib()
    process = attr.ib()


class FakeProcess:
    """A process transport that records signals; ``exit()`` makes it end."""

    def __init__(self, protocol, pid):
        self.proto = protocol
        self.pid = pid
        self.signals = []
        self.stdin_closed = False
        self.connection_lost = False

    def signalProcess(self, name):
        if self.pid is None:
            raise error.ProcessExitedAlready()
        self.signals.append(name)

    def closeStdin(self):
        self.stdin_closed = True

    def loseConnection(self):
        self.connection_lost = True

    def exit(self, exit_code=0, signal=None, pipes_closed=True):
        """End the process with *exit_code* or *signal*; ``processEnded`` too if *pipes_closed*."""
        self.pid = None
        if signal is None and exit_code == 0:
            reason = Failure(error.ProcessDone(0))
        else:
            reason = Failure(error.ProcessTerminated(exit_code, signal))
        self.proto.processExited(reason)
        if pipes_closed:
            self.proto.processEnded(reason)


@implementer(IReactorProcess)
class FakeProcessReactor(MemoryReactorClock):
    """A memory reactor and clock whose ``spawnProcess`` starts FakeProcesses (see ``spawned``)."""

    def __init__(self):
        super().__init__()
        self.spawned = []
        self._pids = itertools.count(1000)

    def spawnProcess(self, processProtocol, executable, args=(), env=None, path=None,
                     uid=None, gid=None, usePTY=False, childFDs=None):
        process = FakeProcess(processProtocol, next(self._pids))
        self.spawned.append(SpawnedProcess(processProtocol, executable, list(args), env,
                                           path, childFDs, process))
        processProtocol.makeConnection(process)
        return process
