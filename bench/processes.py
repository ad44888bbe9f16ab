"""
Child processes of the benchmarks: servers under test and client workers.

``LoggedProcess`` runs a command with its output appended to a log file and
stops it with SIGTERM, then SIGKILL after a bounded wait; ``wait_for_output``
waits for a line of its output (a server logging the port it listens on).
``WorkerProcess`` adds the JSON-lines conversation with a worker child
(``bench_worker.py``, ``kernel_worker.py``, ``direct_worker.py``).
"""

import json
import os
import re

from twisted.internet.defer import Deferred, DeferredQueue, TimeoutError, fail, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol


_RECENT_CHARS = 65536


class ProcessFailed(Exception):
    """A child process exited, or did not answer, while it was still needed."""


class LoggedProcess(ProcessProtocol):
    """A child process whose output goes to a log file; ``ended`` fires with its exit code."""

    def __init__(self, name, log_path):
        self.name = name
        self.log_path = log_path
        self.ended = Deferred()
        self._log = open(log_path, "ab")
        self._recent = ""    # the newest output, for wait_for_output
        self._waiters = []   # (compiled pattern, Deferred)

    def spawn(self, reactor, argv, cwd=None, env=None):
        env = dict(os.environ if env is None else env)
        reactor.spawnProcess(self, argv[0], argv, env=env, path=cwd)
        return self

    def outReceived(self, data):
        self._output(data)

    def errReceived(self, data):
        self._output(data)

    def _output(self, data):
        self._log.write(data)
        self._recent = (self._recent + data.decode("utf-8", "replace"))[-_RECENT_CHARS:]
        for waiter in list(self._waiters):
            found = waiter[0].search(self._recent)
            if found:
                self._waiters.remove(waiter)
                waiter[1].callback(found)

    def wait_for_output(self, reactor, pattern, timeout):
        """A Deferred of the first match of ``pattern`` in the process's output (stdout or stderr).

        Fails with ProcessFailed if the process exits, or ``timeout`` seconds pass, first.
        """
        compiled = re.compile(pattern)
        found = compiled.search(self._recent)
        if found:
            return succeed(found)
        if not self.running:
            return fail(ProcessFailed(f"{self.name} exited:\n{self.log_tail()}"))
        waiter = (compiled, Deferred())
        self._waiters.append(waiter)

        def timed_out(failure):
            failure.trap(TimeoutError)
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            raise ProcessFailed(f"{self.name}: no {pattern!r} in its output within {timeout:g} s:"
                                f"\n{self.log_tail()}")

        return waiter[1].addTimeout(timeout, reactor).addErrback(timed_out)

    def processEnded(self, reason):
        self._log.close()
        code = getattr(reason.value, "exitCode", None)
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            waiter.errback(ProcessFailed(f"{self.name} exited (code {code}):\n{self.log_tail()}"))
        self.ended.callback(code)

    @property
    def pid(self):
        return self.transport.pid

    @property
    def running(self):
        return not self.ended.called

    async def stop(self, reactor, timeout=15.0, signal="TERM"):
        """Ask the process to stop (SIGTERM, or ``signal``); kill it if it has not exited in time."""
        if self.running:
            self._signal(signal)
        try:
            await self._ended_within(reactor, timeout)
        except TimeoutError:
            self._signal("KILL")
            await self._ended_within(reactor, timeout)

    def log_tail(self, lines=15):
        if not self._log.closed:
            self._log.flush()
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
        """Return the worker's next event, which must be ``event`` (or one of a tuple of names)."""
        try:
            message = await self._events.get().addTimeout(timeout, reactor)
        except TimeoutError:
            raise ProcessFailed(f"{self.name}: no {event!r} within {timeout:g} s") from None
        if message["event"] not in ((event,) if isinstance(event, str) else event):
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
