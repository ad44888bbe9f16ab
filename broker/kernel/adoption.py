"""Kernels this process did not start: found in the kernel directory after a restart.

A kernel started by an earlier service (which crashed, or stopped with
``--keep-kernels``) is not our child: no SIGCHLD tells us when it ends, and
its pid may one day name another process. :class:`AdoptedKernel` is the
:class:`~broker.kernel.launcher.LaunchedKernel` of such a kernel: ``exited``
fires when a poll on the clock finds the process gone, and ``signal`` uses
``os.kill`` only while the pid is still that kernel.

Whether a pid is still the kernel: it exists (``kill(pid, 0)``) and, where
``/proc`` says so, its command line names the kernel's connection file (a
zombie's is empty, another program's differs), or, for a kernel forked from a
template (whose command line is the template's), it holds that file open.
"""

import os
import signal as signals

from twisted.internet import defer, task
from twisted.logger import Logger

from broker.kernel.interfaces import SIGNALS
from broker.kernel.records import ipc_prefix, remove_launch_files

#: seconds between checks that an adopted kernel's process still exists
POLL_INTERVAL = 1.0


class ProcessGone:
    """How an adopted kernel ended: it is gone; not being its parent, we cannot know how."""

    exit_code = signal = None

    def __str__(self):
        return "the process is gone"


def kernel_process_running(pid, connection_file):
    """Whether process *pid* exists and is the kernel of *connection_file* (or of its account copy)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's process now
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except FileNotFoundError:
        return not os.path.isdir("/proc")  # no /proc on this system: trust the pid
    except OSError:
        return False
    if os.fsencode(os.path.realpath(connection_file)) in argv:
        return True
    if _holds_open(pid, os.path.realpath(connection_file)):
        return True  # a forked kernel (broker.kernel.forking): its argv is its template's
    # a kernel run as its user's account was given its own copy, <home>/.kernel-<id[:12]>.json
    name = os.path.basename(connection_file)
    if not (name.startswith("kernel-") and name.endswith(".json")):
        return False
    copy = os.fsencode(os.sep + os.path.basename(ipc_prefix("", name[len("kernel-"):-5])) + ".json")
    return any(arg.endswith(copy) for arg in argv)


def _holds_open(pid, path):
    """Whether process *pid* has *path* open (a forked kernel keeps its connection file open)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            continue
    return False


class AdoptedKernel:
    """A running kernel process this service did not start, and how to reach it."""

    log = Logger()

    def __init__(self, kernel_id, kernel_name, connection_info, connection_file, pid, clock,
                 interrupt_mode="signal", poll_interval=POLL_INTERVAL,
                 running=kernel_process_running, kill=os.kill, log_cap=None, poll=True):
        self.kernel_id, self.kernel_name = kernel_id, kernel_name
        self.connection_info = connection_info
        self.connection_file = connection_file
        self.pid = pid
        self.interrupt_mode = interrupt_mode
        self.exited = defer.Deferred()
        self._running = running
        self._kill = kill
        self.log_cap = log_cap  # keeps its .log within its size while we watch it
        self._poll = task.LoopingCall(self._check)
        self._poll.clock = clock
        self._poll_interval = poll_interval
        if poll:
            self.watch_by_polling()

    def watch_by_polling(self):
        """Check every *poll_interval* seconds that the process still exists (unless it exited)."""
        if not self._poll.running and not self.exited.called:
            self._poll.start(self._poll_interval, now=False)

    def _check(self):
        if not self._running(self.pid, self.connection_file):
            self.log.info("adopted kernel {kernel_id} (pid {pid}) is gone",
                          kernel_id=self.kernel_id, pid=self.pid)
            self.stop_watching()
            self.exited.callback(ProcessGone())

    def stop_watching(self):
        """Stop polling the process and capping its log (the service is letting the kernel go)."""
        if self._poll.running:
            self._poll.stop()
        if self.log_cap is not None:
            self.log_cap.stop()

    def signal(self, name):
        """Send signal *name* ('INT', 'TERM' or 'KILL'); False if the kernel is gone."""
        if name not in SIGNALS:
            raise ValueError(f"cannot send signal {name!r}: use one of {', '.join(SIGNALS)}")
        if self.exited.called or not self._running(self.pid, self.connection_file):
            return False
        try:
            self._kill(self.pid, getattr(signals, "SIG" + name))
        except ProcessLookupError:
            return False
        return True

    def remove_files(self):
        """Remove the connection file and the output log (a kernel that exited no longer needs them)."""
        if self.log_cap is not None:
            self.log_cap.stop()
        remove_launch_files(self.connection_file)
