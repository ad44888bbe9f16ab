"""
Child processes of the router benchmark: routers and client workers.

``LoggedProcess`` runs a command with its output appended to a log file and
stops it with SIGTERM, then SIGKILL after a bounded wait.  ``WorkerProcess``
adds the JSON-lines conversation with a ``bench_worker.py`` child.
"""

import json
import os

from twisted.internet.defer import Deferred, DeferredQueue, TimeoutError
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol


class ProcessFailed(Exception):
    """A child process exited, or did not answer, while it was still needed."""


class LoggedProcess(ProcessProtocol):
    """A child process whose output goes to a log file; ``ended`` fires with its exit code."""

    def __init__(self, name, log_path):
        self.name = name
        self.log_path = log_path
        self.ended = Deferred()
        self._log = open(log_path, "ab")

    def spawn(self, reactor, argv, cwd=None, env=None):
        env = dict(os.environ if env is None else env)
        reactor.spawnProcess(self, argv[0], argv, env=env, path=cwd)
        return self

    def outReceived(self, data):
        self._log.write(data)

    def errReceived(self, data):
        self._log.write(data)

    def processEnded(self, reason):
        self._log.close()
        code = getattr(reason.value, "exitCode", None)
        self.ended.callback(code)

    @property
    def pid(self):
        return self.transport.pid

    @property
    def running(self):
        return not self.ended.called

    async def stop(self, reactor, timeout=15.0):
        """Ask the process to stop (SIGTERM); kill it if it has not exited in time."""
        if self.running:
            self._signal("TERM")
        try:
            await self._ended_within(reactor, timeout)
        except TimeoutError:
            self._signal("KILL")
            await self._ended_within(reactor, timeout)

    def log_tail(self, lines=15):
        with open(self.log_path, "rb") as log:
            text = log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, name):
        try:
            self.transport.signalProcess(name)
        except ProcessExitedAlready:
            pass

    def _ended_within(self, reactor, timeout):
        """A fresh Deferred that fires with the exit code, or fails after ``timeout``."""
        waiter = Deferred()

        def relay(code):
            waiter.callback(code)
            return code

        self.ended.addCallback(relay)
        return waiter.addTimeout(timeout, reactor)


class WorkerProcess(LoggedProcess):
    """A ``bench_worker.py`` child: JSON events on its stdout, commands on its stdin."""

    def __init__(self, name, log_path):
        super().__init__(name, log_path)
        self._buffer = b""
        self._events = DeferredQueue()

    def outReceived(self, data):
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            self._events.put(json.loads(line))

    def processEnded(self, reason):
        self._events.put({"event": "exited"})
        super().processEnded(reason)

    def command(self, **fields):
        self.transport.write(json.dumps(fields).encode() + b"\n")

    async def expect(self, reactor, event, timeout):
        """Return the worker's next event, which must be ``event``."""
        try:
            message = await self._events.get().addTimeout(timeout, reactor)
        except TimeoutError:
            raise ProcessFailed(f"{self.name}: no {event!r} within {timeout:g} s") from None
        if message["event"] != event:
            raise ProcessFailed(
                f"{self.name}: expected {event!r}, got {message['event']!r}\n{self.log_tail()}"
            )
        return message

    async def stop(self, reactor, timeout=15.0):
        """Close the worker's stdin (its signal to leave and exit), then stop it."""
        if self.running:
            self.transport.closeStdin()
        try:
            await self._ended_within(reactor, timeout)
        except TimeoutError:
            await super().stop(reactor, timeout)
