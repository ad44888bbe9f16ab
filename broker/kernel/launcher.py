"""Starting kernel processes from kernelspecs, without blocking the reactor.

:class:`KernelLauncher` writes ``kernel-<id>.json`` (loopback ports, a fresh
HMAC key, mode 0600) in its kernel directory (mode 0700 when it creates it)
and spawns the kernelspec's command with ``reactor.spawnProcess``.
:class:`LaunchedKernel` is what the caller gets back: the connection info to
open channels with, the process, and Deferreds for its end.
:meth:`KernelLauncher.adopt` gives the same for a kernel an earlier service
started (see :mod:`broker.kernel.adoption`).

Kernels outlive a service that crashes, so a restarted one can re-attach them:

* no ``JPY_PARENT_PID``: with it, ipykernel's parent poller exits as soon as
  its parent is gone (Jupyter Server sets it; ``jupyter_client`` leaves it out
  only for "independent" kernels, as here);
* the kernel's stdout and stderr go to ``kernel-<id>.log`` (0600), not to
  pipes into this process: after a crash nothing would read them, and
  ipykernel's thread that echoes fd-level output to the original stdout stops
  at the first EPIPE, after which the kernel blocks once that pipe is full.
  A :class:`~broker.kernel.logs.LogCap` keeps that file within
  *log_max_bytes* while the kernel runs (one older part kept);
* a new session (``setsid``, as ``jupyter_client`` does with
  ``start_new_session``): a terminal's Ctrl-C or hang-up aimed at the service
  does not reach kernels. Twisted's ``spawnProcess`` cannot do that itself, so
  the command runs through a two-line Python ``exec`` wrapper (same pid).

In multi-user mode (a launcher given *accounts*) each kernel runs as its
owner's OS account (:mod:`broker.kernel.accounts`), confined by
:mod:`broker.kernel.confinement` (limits, then the switch, then the exec):

* it talks over ZeroMQ's ``ipc`` transport: Unix sockets
  ``<home>/.kernel-<id[:12]>-<n>`` in the account's 0700 working directory,
  which no other account can enter (loopback TCP ports could be reached by
  any local process);
* the service's connection file stays in the kernel directory (0700, the
  service's); the kernel is given its own copy, ``<home>/.kernel-<id[:12]>.json``,
  mode 0600, owned by the account, created with ``O_EXCL|O_NOFOLLOW`` (a
  link planted there is never followed);
* its cwd is that working directory, its environment
  :meth:`~broker.kernel.confinement.Confinement.environment`.

:meth:`LaunchedKernel.signal` signals the kernel process only.
"""

import contextlib
import json
import os
import re
import secrets
import signal as signals
import sys

import attr
from jupyter_client.connect import write_connection_file
from jupyter_client.kernelspec import KernelSpecManager
from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from zope.interface import implementer

from broker.kernel import records
from broker.kernel.adoption import POLL_INTERVAL, AdoptedKernel, kernel_process_running
from broker.kernel.confinement import Confinement
from broker.kernel.errors import InvalidKernelId, KernelGone, NoSuchKernelSpec
from broker.kernel.interfaces import SIGNALS, IKernelLauncher
from broker.kernel.logs import DEFAULT_MAX_BYTES, LogCap
from broker.kernel.kernelspecs import find_spec, kernel_command, kernel_environment, kernelspecs_model

LOOPBACK = "127.0.0.1"
SIGNATURE_SCHEME = "hmac-sha256"
#: how long the kernel's output pipes may stay open after it exited (a child
#: process it started may hold them) before they are closed
PIPE_GRACE = 2.0
_KERNEL_ID = re.compile(r"[0-9a-z_]+")
_MAX_LINE = 8192
#: runs the kernel's command in a new session (argv: executable, kernel argv...)
NEW_SESSION = ("import os, sys\ntry: os.setsid()\nexcept OSError: pass\n"
               "os.execv(sys.argv[1], sys.argv[2:])")


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
    """Fires ``exited`` (a KernelExit) and then ``ended``; logs output that comes on pipes.

    ``exited`` fires as soon as the process is reaped, ``ended`` once its
    output pipes are closed too (at most PIPE_GRACE seconds later).
    (:class:`KernelLauncher` gives kernels a log file, not pipes, for their output.)
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
    #: keeps the kernel's .log within its size while the kernel runs (a LogCap), or None
    log_cap = attr.ib(default=None, repr=False)

    def __attrs_post_init__(self):
        self.exited.addBoth(self._stop_log_cap)

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

    def stop_watching(self):
        """Stop capping its log (the next service does); a child's end is reported by the reactor."""
        self._stop_log_cap()

    def remove_files(self):
        """Remove the connection file and the output log (a kernel that exited no longer needs them)."""
        self._stop_log_cap()
        records.remove_launch_files(self.connection_file)

    def _stop_log_cap(self, result=None):
        if self.log_cap is not None:
            self.log_cap.stop()
        return result

    def output_tail(self):
        """The last lines the kernel printed (its ``.log``), for saying why it failed."""
        return records.output_tail(self.connection_file)


@implementer(IKernelLauncher)
class KernelLauncher:
    """Starts kernels as child processes of *reactor*, their connection files in *kernel_dir*."""

    log = Logger()

    def __init__(self, reactor, kernel_dir, spec_manager=None, environ=None, cwd=None,
                 log_max_bytes=DEFAULT_MAX_BYTES, accounts=None, confinement=None,
                 run_blocking=None):
        self.reactor = reactor
        #: run(f, *args) -> Deferred, for file work off the reactor (the log caps); None: inline
        self.run_blocking = run_blocking
        #: a UserAccounts (multi-user mode: kernels run as their owner's account), or None
        self.accounts = accounts
        self.confinement = confinement or Confinement()
        self.log_max_bytes = log_max_bytes
        self.kernel_dir = os.path.abspath(kernel_dir)
        self.spec_manager = spec_manager or KernelSpecManager()
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd

    def kernelspecs(self):
        """The installed kernelspecs in Jupyter Server's REST shape."""
        return kernelspecs_model(self.spec_manager)

    def launch(self, kernel_name, kernel_id, owner=None):
        """Start a kernel (as *owner*'s account in multi-user mode); a Deferred of its LaunchedKernel."""
        if self.accounts is None:
            return defer.maybeDeferred(self._launch, kernel_name, kernel_id)
        if not isinstance(kernel_id, str) or not _KERNEL_ID.fullmatch(kernel_id):
            return defer.fail(InvalidKernelId(f"kernel id {kernel_id!r} is not a string of [0-9a-z_]"))
        d = self.accounts.account_for(owner)
        d.addCallback(lambda account: self._launch(kernel_name, kernel_id, account))
        return d

    def _launch(self, kernel_name, kernel_id, account=None):
        if not isinstance(kernel_id, str) or not _KERNEL_ID.fullmatch(kernel_id):
            raise InvalidKernelId(f"kernel id {kernel_id!r} is not a string of [0-9a-z_]")
        spec = find_spec(self.spec_manager, kernel_name)
        base_env = self.environ if account is None else self.confinement.environment(
            self.environ, account)
        env = kernel_environment(spec, base_env)
        env.pop("JPY_PARENT_PID", None)  # the kernel must outlive a crashed service
        connection_file = records.connection_path(self.kernel_dir, kernel_id)
        ipc_prefix = None if account is None else records.ipc_prefix(account.home, kernel_id)
        kernel_file = connection_file if account is None else ipc_prefix + ".json"
        executable, argv = kernel_command(spec, kernel_file, env.get("PATH", os.defpath))
        info = self._write_connection_file(connection_file, kernel_name, ipc_prefix)
        if account is None:
            command, cwd = [sys.executable, "-I", "-S", "-c", NEW_SESSION, executable, *argv], self.cwd
        else:
            command = self.confinement.command(sys.executable, account, executable, argv)
            cwd = account.home
        kernel_protocol = KernelProcessProtocol(self.reactor, kernel_id)
        log_path = records.log_path(self.kernel_dir, kernel_id)
        output = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if account is not None:
                self._write_account_copy(connection_file, kernel_file, account)
            process = self.reactor.spawnProcess(
                kernel_protocol, sys.executable, command,
                env=env, path=cwd, childFDs={0: "w", 1: output, 2: output},
            )
        except BaseException:
            records.remove_launch_files(connection_file)
            raise
        finally:
            os.close(output)
        process.closeStdin()
        self.log.info("started kernel {kernel_id} ({kernel_name}), pid {pid}",
                      kernel_id=kernel_id, kernel_name=kernel_name, pid=process.pid, argv=argv)
        return LaunchedKernel(kernel_id, kernel_name, info, connection_file, process,
                              kernel_protocol.exited, kernel_protocol.ended,
                              interrupt_mode=getattr(spec, "interrupt_mode", None) or "signal",
                              log_cap=self._log_cap(kernel_id))

    def _log_cap(self, kernel_id):
        return LogCap(self.reactor, records.log_path(self.kernel_dir, kernel_id),
                      self.log_max_bytes, run=self.run_blocking).start()

    def adopt(self, kernel_name, kernel_id, pid, poll_interval=POLL_INTERVAL):
        """A Deferred of the AdoptedKernel of a running kernel an earlier service started.

        Fails with KernelGone if process *pid* is not that kernel (any more)
        or its connection file cannot be read.
        """
        return defer.maybeDeferred(self._adopt, kernel_name, kernel_id, pid, poll_interval)

    def _adopt(self, kernel_name, kernel_id, pid, poll_interval):
        connection_file = records.connection_path(self.kernel_dir, kernel_id)
        if not kernel_process_running(pid, connection_file):
            raise KernelGone(f"kernel {kernel_id}: no process {pid} runs it")
        try:
            with open(connection_file) as f:
                info = json.load(f)
        except (OSError, ValueError) as e:
            with contextlib.suppress(ProcessLookupError):  # unreachable: it must not run on
                os.kill(pid, signals.SIGKILL)
            raise KernelGone(f"kernel {kernel_id}: its connection file is unreadable ({e}); "
                             f"killed process {pid}")
        try:
            interrupt_mode = find_spec(self.spec_manager, kernel_name).interrupt_mode
        except NoSuchKernelSpec:
            interrupt_mode = None
        return AdoptedKernel(kernel_id, kernel_name, info, connection_file, pid, self.reactor,
                             interrupt_mode=interrupt_mode or "signal", poll_interval=poll_interval,
                             log_cap=self._log_cap(kernel_id))

    def _write_account_copy(self, connection_file, path, account):
        """The kernel's own copy of its connection file: 0600, the account's, never through a link."""
        with open(connection_file, "rb") as f:
            data = f.read()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a leftover (or a planted link) goes; unlink never follows links
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if self.confinement.switch_accounts:
                os.fchown(fd, account.uid, account.gid)
            os.write(fd, data)
        finally:
            os.close(fd)

    def _write_connection_file(self, connection_file, kernel_name, ipc_prefix=None):
        self._ensure_kernel_dir()
        _path, info = write_connection_file(
            connection_file, ip=ipc_prefix or LOOPBACK, transport="ipc" if ipc_prefix else "tcp",
            key=secrets.token_hex(32).encode("ascii"),
            signature_scheme=SIGNATURE_SCHEME, kernel_name=kernel_name,
        )
        os.chmod(connection_file, 0o600)
        return info

    def _ensure_kernel_dir(self):
        records.ensure_private_dir(self.kernel_dir)
