"""Starting kernel processes from kernelspecs, without blocking the reactor.

:class:`KernelLauncher` writes ``kernel-<id>.json`` (loopback ports, a fresh
HMAC key, mode 0600) in its kernel directory (mode 0700 when it creates it)
and spawns the kernelspec's command with ``reactor.spawnProcess``. The kernel's
stdout and stderr are logged at debug level. :class:`LaunchedKernel` is what
the caller gets back: the connection info to open channels with, the process,
and Deferreds for its end.

Twisted's ``spawnProcess`` cannot start a new session, so unlike
``jupyter_client`` the kernel stays in the host's process group and
:meth:`LaunchedKernel.signal` signals the kernel process only. The kernel
gets ``JPY_PARENT_PID``, so ipykernel exits when the host dies.
"""

import os
import re
import secrets

import attr
from jupyter_client.connect import write_connection_file
from jupyter_client.kernelspec import KernelSpecManager
from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from zope.interface import implementer

from broker.kernel.errors import InvalidKernelId
from broker.kernel.interfaces import IKernelLauncher
from broker.kernel.kernelspecs import find_spec, kernel_command, kernel_environment, kernelspecs_model

LOOPBACK = "127.0.0.1"
SIGNATURE_SCHEME = "hmac-sha256"
SIGNALS = ("INT", "TERM", "KILL")
#: how long the kernel's output pipes may stay open after it exited (a child
#: process it started may hold them) before they are closed
PIPE_GRACE = 2.0
_KERNEL_ID = re.compile(r"[0-9a-z_]+")
_MAX_LINE = 8192


@attr.s(frozen=True)
class KernelExit:
    """How a kernel process ended: an exit code, or the signal that killed it."""

    exit_code = attr.ib()
    signal = attr.ib(default=None)

    @classmethod
    def from_reason(cls, reason):
        """From the Failure given to ``processExited``."""
        return cls(exit_code=getattr(reason.value, "exitCode", None),
                   signal=getattr(reason.value, "signal", None))

    def __str__(self):
        return f"killed by signal {self.signal}" if self.signal else f"exit code {self.exit_code}"


class KernelProcessProtocol(protocol.ProcessProtocol):
    """Logs a kernel's output and fires ``exited`` (a KernelExit) and then ``ended``.

    ``exited`` fires as soon as the process is reaped, ``ended`` once its
    output pipes are closed too (at most PIPE_GRACE seconds later).
    """

    log = Logger()

    def __init__(self, clock, kernel_id):
        self.clock = clock
        self.kernel_id = kernel_id
        self.exited = defer.Deferred()
        self.ended = defer.Deferred()
        self._partial = {1: b"", 2: b""}
        self._close_pipes = None

    def outReceived(self, data):
        self._log_output(1, data)

    def errReceived(self, data):
        self._log_output(2, data)

    def _log_output(self, fd, data):
        *lines, rest = (self._partial[fd] + data).split(b"\n")
        if len(rest) > _MAX_LINE:
            lines, rest = [*lines, rest], b""
        self._partial[fd] = rest
        for line in lines:
            self.log.debug("kernel {kernel_id} {stream}: {line}", kernel_id=self.kernel_id,
                           stream="stdout" if fd == 1 else "stderr",
                           line=line.decode("utf-8", "replace").rstrip("\r"))

    def processExited(self, reason):
        status = KernelExit.from_reason(reason)
        self.log.info("kernel {kernel_id} exited: {status}", kernel_id=self.kernel_id,
                      status=str(status), exit_code=status.exit_code, signal=status.signal)
        self._close_pipes = self.clock.callLater(PIPE_GRACE, self.transport.loseConnection)
        self.exited.callback(status)

    def processEnded(self, reason):
        for fd, rest in self._partial.items():
            if rest:
                self._log_output(fd, b"\n")
        if self._close_pipes is not None and self._close_pipes.active():
            self._close_pipes.cancel()
        self.ended.callback(None)


@attr.s
class LaunchedKernel:
    """A started kernel process and how to reach it."""

    kernel_id = attr.ib()
    kernel_name = attr.ib()
    connection_info = attr.ib(repr=False)
    connection_file = attr.ib()
    process = attr.ib(repr=False)
    #: fires with a KernelExit when the process has exited
    exited = attr.ib(repr=False)
    #: fires with None once the process has exited and its output pipes are closed
    ended = attr.ib(repr=False)
    #: how the kernelspec wants to be interrupted: "signal" (SIGINT) or "message"
    interrupt_mode = attr.ib(default="signal")

    @property
    def pid(self):
        return self.process.pid

    def signal(self, name):
        """Send signal *name* ('INT', 'TERM' or 'KILL'); False if the process is already gone."""
        if name not in SIGNALS:
            raise ValueError(f"cannot send signal {name!r}: use one of {', '.join(SIGNALS)}")
        try:
            self.process.signalProcess(name)
        except error.ProcessExitedAlready:
            return False
        return True

    def remove_files(self):
        """Remove the connection file (a kernel that exited no longer needs it)."""
        try:
            os.remove(self.connection_file)
        except FileNotFoundError:
            pass


@implementer(IKernelLauncher)
class KernelLauncher:
    """Starts kernels as child processes of *reactor*, their connection files in *kernel_dir*."""

    log = Logger()

    def __init__(self, reactor, kernel_dir, spec_manager=None, environ=None, cwd=None):
        self.reactor = reactor
        self.kernel_dir = os.path.abspath(kernel_dir)
        self.spec_manager = spec_manager or KernelSpecManager()
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd

    def kernelspecs(self):
        """The installed kernelspecs in Jupyter Server's REST shape."""
        return kernelspecs_model(self.spec_manager)

    def launch(self, kernel_name, kernel_id):
        """Start a kernel; a Deferred of its LaunchedKernel."""
        return defer.maybeDeferred(self._launch, kernel_name, kernel_id)

    def _launch(self, kernel_name, kernel_id):
        if not isinstance(kernel_id, str) or not _KERNEL_ID.fullmatch(kernel_id):
            raise InvalidKernelId(f"kernel id {kernel_id!r} is not a string of [0-9a-z_]")
        spec = find_spec(self.spec_manager, kernel_name)
        env = kernel_environment(spec, self.environ)
        env["JPY_PARENT_PID"] = str(os.getpid())
        connection_file = os.path.join(self.kernel_dir, f"kernel-{kernel_id}.json")
        executable, argv = kernel_command(spec, connection_file, env.get("PATH", os.defpath))
        info = self._write_connection_file(connection_file, kernel_name)
        kernel_protocol = KernelProcessProtocol(self.reactor, kernel_id)
        try:
            process = self.reactor.spawnProcess(
                kernel_protocol, executable, argv, env=env, path=self.cwd,
                childFDs={0: "w", 1: "r", 2: "r"},
            )
        except BaseException:
            os.remove(connection_file)
            raise
        process.closeStdin()
        self.log.info("started kernel {kernel_id} ({kernel_name}), pid {pid}",
                      kernel_id=kernel_id, kernel_name=kernel_name, pid=process.pid, argv=argv)
        return LaunchedKernel(kernel_id, kernel_name, info, connection_file, process,
                              kernel_protocol.exited, kernel_protocol.ended,
                              interrupt_mode=getattr(spec, "interrupt_mode", None) or "signal")

    def _write_connection_file(self, connection_file, kernel_name):
        self._ensure_kernel_dir()
        _path, info = write_connection_file(
            connection_file, ip=LOOPBACK, transport="tcp",
            key=secrets.token_hex(32).encode("ascii"),
            signature_scheme=SIGNATURE_SCHEME, kernel_name=kernel_name,
        )
        os.chmod(connection_file, 0o600)
        return info

    def _ensure_kernel_dir(self):
        if not os.path.isdir(self.kernel_dir):
            os.makedirs(self.kernel_dir, mode=0o700, exist_ok=True)
            os.chmod(self.kernel_dir, 0o700)
