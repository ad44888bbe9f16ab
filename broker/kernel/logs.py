"""A kernel's ``.log`` file, kept within a size: rotated to one old file, read back for failures.

The kernel process writes its stdout and stderr straight into
``kernel-<id>.log`` (an ``O_APPEND`` file descriptor it holds, so the file
outlives a crashed service; see :mod:`broker.kernel.launcher`). The service
cannot stand between the kernel and that file, so it caps it from outside:
a :class:`LogCap` looks at the file's size every :data:`CHECK_INTERVAL`
seconds and, once it is over *max_bytes*, copies its last *max_bytes* to
``kernel-<id>.log.1`` (replacing the older one) and truncates the log to
zero (in the reactor's thread pool, given *run*: copying megabytes must not
stall the reactor); the kernel's next write lands at the new end (``O_APPEND``). A
kernel's logs take at most about twice *max_bytes* on disk, plus what it
writes in one interval; the few bytes written between the copy and the
truncation are lost.

:func:`output_tail` reads the end of what the kernel printed across both
files, for the message of a failed start.
"""

import os

from twisted.internet import defer, task
from twisted.logger import Logger

#: default bytes of a kernel's .log before it is rotated (``--kernel-log-bytes``)
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: seconds between checks of a kernel's .log size
CHECK_INTERVAL = 2.0
_CHUNK = 1024 * 1024


def old_log_path(log_path):
    """Where the rotated-out part of *log_path* is kept."""
    return log_path + ".1"


def rotate_if_over(log_path, max_bytes):
    """Rotate *log_path* if it is over *max_bytes*; True if it did."""
    try:
        size = os.stat(log_path).st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    old = old_log_path(log_path)
    temporary = f"{old}.{os.getpid()}.tmp"
    with open(log_path, "rb") as log, open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                   0o600), "wb") as copy:
        log.seek(max(0, size - max_bytes))
        while chunk := log.read(_CHUNK):
            copy.write(chunk)
    os.replace(temporary, old)
    os.truncate(log_path, 0)
    return True


def output_tail(log_path, max_bytes=4096):
    """The last *max_bytes* the kernel printed (the old log's end, then the log), decoded; "" if none."""
    tail = b""
    for path in (log_path, old_log_path(log_path)):
        try:
            with open(path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - (max_bytes - len(tail))))
                tail = log.read() + tail
        except OSError:
            pass
        if len(tail) >= max_bytes:
            break
    return tail.decode("utf-8", "replace").strip()


def remove_logs(log_path):
    """Remove a kernel's log and its rotated-out part."""
    for path in (log_path, old_log_path(log_path)):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class LogCap:
    """Keeps one kernel's .log within *max_bytes*, checked every *interval* seconds on *clock*.

    *run(f, *args)* runs the check and rotation and gives a Deferred of its result
    (a thread pool's runner in the service; by default here and now). The next
    check waits for the last one.
    """

    log = Logger()

    def __init__(self, clock, log_path, max_bytes=DEFAULT_MAX_BYTES, interval=CHECK_INTERVAL,
                 run=None):
        self.log_path = log_path
        self.max_bytes = max_bytes
        self.run = run or defer.maybeDeferred
        self._check = task.LoopingCall(self.check)
        self._check.clock = clock
        self._interval = interval

    def start(self):
        if not self._check.running:
            self._check.start(self._interval, now=False)
        return self

    def stop(self):
        if self._check.running:
            self._check.stop()

    def check(self):
        d = self.run(rotate_if_over, self.log_path, self.max_bytes)
        d.addCallbacks(self._checked, self._failed)
        return d.addBoth(self._tidy)

    def _checked(self, rotated):
        if rotated:
            self.log.info("rotated {path} at {max_bytes} bytes", path=self.log_path,
                          max_bytes=self.max_bytes)

    def _failed(self, failure):
        failure.trap(OSError)
        self.log.warn("cannot rotate {path}: {error}", path=self.log_path,
                      error=failure.getErrorMessage())

    def _tidy(self, result):
        """Stopped while a rotation ran in a thread: the kernel's logs may have been removed in
        the meantime, and the rotation made the old part again; it goes too."""
        if not self._check.running and not os.path.exists(self.log_path):
            remove_logs(self.log_path)
        return result
