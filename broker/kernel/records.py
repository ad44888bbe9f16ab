"""What the kernel directory keeps about each kernel, so a restarted service finds it again.

Per kernel ``<id>`` the kernel directory (mode 0700) holds, each file mode 0600:

* ``kernel-<id>.json``: the connection file (loopback ports, HMAC key);
* ``kernel-<id>.meta.json``: its :class:`KernelRecord` (id, kernelspec name,
  owner, created, pid, ``seq_reserved``, ``shared``, ``pooled``), replaced
  atomically on every change;
* ``kernel-<id>.log``: the kernel process's own stdout and stderr (removed,
  with the connection file, when that process has ended), and
  ``kernel-<id>.log.1``, its older part once it passed its size
  (:mod:`broker.kernel.logs`);
* ``kernel-<id>.lock``: ``flock``-ed by the service that supervises the
  kernel. The lock goes with the process that holds it, even on SIGKILL, so a
  crashed service's kernels are free to take, and two services sharing a
  directory never both supervise one kernel.

``seq_reserved`` is a high-water mark written *before* any seq above the
previous one is handed out (in blocks of :data:`SEQ_BLOCK`), so a service
that restarts after a crash numbers the kernel's output after every seq the
old service may have used, without writing the file on every message.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil

import attr
from twisted.logger import Logger

from broker.kernel import logs

#: how many output seqs one write of the metadata file reserves
SEQ_BLOCK = 1000
_log = Logger()
_KERNEL_FILE = re.compile(r"kernel-([0-9a-z_]+)(\.json|\.meta\.json|\.log|\.log\.1|\.lock)")


def connection_path(kernel_dir, kernel_id):
    return os.path.join(kernel_dir, f"kernel-{kernel_id}.json")


def record_path(kernel_dir, kernel_id):
    return os.path.join(kernel_dir, f"kernel-{kernel_id}.meta.json")


def log_path(kernel_dir, kernel_id):
    return os.path.join(kernel_dir, f"kernel-{kernel_id}.log")


def lock_path(kernel_dir, kernel_id):
    return os.path.join(kernel_dir, f"kernel-{kernel_id}.lock")


def launch_log_path(connection_file):
    """The ``.log`` of the launch whose connection file is *connection_file*."""
    return connection_file[:-len(".json")] + ".log"


def output_tail(connection_file, max_bytes=4096):
    """The last lines of a launch's log (what the kernel printed), at most *max_bytes*; "" if none."""
    return logs.output_tail(launch_log_path(connection_file), max_bytes)


def ipc_prefix(workdir, kernel_id):
    """Where a confined kernel's Unix sockets (``<prefix>-<n>``) and its own connection file
    (``<prefix>.json``) go: short, for Unix socket paths are at most 107 bytes."""
    return os.path.join(workdir, f".kernel-{kernel_id[:12]}")


def ipc_files(info):
    """The files an ``ipc`` connection's kernel side has: its sockets and connection file copy."""
    if not isinstance(info, dict) or info.get("transport") != "ipc" or not info.get("ip"):
        return []
    ports = [info.get(f"{channel}_port") for channel in
             ("shell", "iopub", "stdin", "control", "hb")]
    return [f"{info['ip']}-{port}" for port in ports if isinstance(port, int)] \
        + [f"{info['ip']}.json"]


def remove_launch_files(connection_file):
    """Remove a launch's connection file and its logs (what the launcher wrote).

    For an ``ipc`` kernel, also its sockets and its own copy of the connection
    file in its working directory (``unlink`` never follows a link there).
    """
    try:
        with open(connection_file) as f:
            extra = ipc_files(json.load(f))
    except (OSError, ValueError):
        extra = []
    for path in [connection_file, *extra]:
        try:
            os.remove(path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            pass
    logs.remove_logs(launch_log_path(connection_file))


class KernelDirNotOurs(Exception):
    """The kernel directory belongs to another user: its connection files would not be private."""


def check_kernel_dir_owner(path):
    """Raise :class:`KernelDirNotOurs` if *path* exists and is not this process's user's."""
    try:
        owner = os.stat(path).st_uid
    except FileNotFoundError:
        return
    if owner != os.getuid():
        raise KernelDirNotOurs(
            f"kernel directory {path} belongs to uid {owner}, not to this service's user "
            f"(uid {os.getuid()}): kernels' connection files (their HMAC keys) would not be "
            f"private there; give a directory of your own")


def ensure_private_dir(path):
    """Make *path* a directory of mode 0700: create it, or tighten an existing one of ours.

    An existing directory that belongs to another user is refused
    (:class:`KernelDirNotOurs`).
    """
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        return
    check_kernel_dir_owner(path)
    mode = os.stat(path).st_mode & 0o777
    if mode != 0o700:
        os.chmod(path, 0o700)
        _log.warn("kernel directory {path} had mode {old:04o}: now 0700", path=path, old=mode)


@attr.s
class KernelRecord:
    """The metadata file's content."""

    kernel_id = attr.ib()
    kernel_name = attr.ib()
    owner = attr.ib()
    created = attr.ib()
    pid = attr.ib(default=None)
    seq_reserved = attr.ib(default=0)
    #: user -> "watch" or "full": whom the kernel is shared with (kept for a re-attach)
    shared = attr.ib(factory=dict)
    #: a warm pool's kernel not handed out yet: no one's work, killed rather than re-attached
    pooled = attr.ib(default=False)


class KernelRecords:
    """The per-kernel files of one kernel directory: claim, write, read, list, remove."""

    log = Logger()

    def __init__(self, kernel_dir):
        self.kernel_dir = os.path.abspath(kernel_dir)

    def claim(self, kernel_id):
        """Take the kernel's lock: a :class:`Claim`, or None if a live service holds it."""
        ensure_private_dir(self.kernel_dir)
        fd = os.open(lock_path(self.kernel_dir, kernel_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return Claim(fd)

    def write(self, record):
        """Replace the metadata file atomically (write a 0600 temporary file, rename it)."""
        path = record_path(self.kernel_dir, record.kernel_id)
        temporary = f"{path}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(attr.asdict(record), f)
        os.replace(temporary, path)

    def read(self, kernel_id):
        """The kernel's KernelRecord, or None if it has none or it cannot be read."""
        try:
            with open(record_path(self.kernel_dir, kernel_id)) as f:
                return KernelRecord(**json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            self.log.warn("unreadable metadata of kernel {kernel_id}: {error}",
                          kernel_id=kernel_id, error=str(e))
            return None

    def connection_info(self, kernel_id):
        """The kernel's connection file as a dict (OSError or ValueError if unreadable)."""
        with open(connection_path(self.kernel_dir, kernel_id)) as f:
            return json.load(f)

    def kernel_ids(self):
        """The ids that have any file in the directory."""
        try:
            names = os.listdir(self.kernel_dir)
        except FileNotFoundError:
            return set()
        return {m.group(1) for m in map(_KERNEL_FILE.fullmatch, names) if m}

    def remove(self, kernel_id):
        """Remove every file of the kernel (the caller's claim, if any, is released separately)."""
        self._remove_pooled_files(kernel_id)
        logs.remove_logs(log_path(self.kernel_dir, kernel_id))
        for path in (record_path, connection_path, lock_path):
            try:
                os.remove(path(self.kernel_dir, kernel_id))
            except FileNotFoundError:
                pass

    def _remove_pooled_files(self, kernel_id):
        """A multi-user pooled kernel's files in the kernel directory (its sockets, its private
        IPython directory), which a crashed service leaves there."""
        prefix = ipc_prefix(self.kernel_dir, kernel_id)
        try:
            info = self.connection_info(kernel_id)
        except (OSError, ValueError):
            info = {}
        if isinstance(info, dict) and info.get("ip") == prefix:
            for path in ipc_files(info):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.remove(path)
        shutil.rmtree(prefix + ".ipython", ignore_errors=True)


class Claim:
    """A held kernel lock; ``release()`` lets it go (closing the file releases the flock)."""

    def __init__(self, fd):
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class KernelRecordFile:
    """One kernel's metadata file, kept current, and the claim on the kernel.

    The supervisor reports each launch (``launched``), the output history asks
    for seqs (``reserve_seq``); ``remove`` ends the kernel's files for good,
    ``release`` leaves them for the next service (``--keep-kernels``).
    """

    log = Logger()

    def __init__(self, records, record, claim, block=SEQ_BLOCK):
        self.records = records
        self.record = record
        self.claim = claim
        self.block = block

    def launched(self, pid):
        self.record.pid = pid
        self._write()

    def reserve_seq(self, seq):
        """Reserve seqs from *seq* on (a block of them); return the highest seq reserved."""
        self.record.seq_reserved = seq + self.block - 1
        self._write()
        return self.record.seq_reserved

    def shared(self, shares):
        """The kernel's shares changed: *shares* (user -> access) are what a re-attach restores."""
        self.record.shared = dict(shares)
        self._write()

    def keep(self, last_seq):
        """Leave the kernel for the next service: exact last seq, lock released."""
        self.record.seq_reserved = last_seq
        self._write()
        self.claim.release()

    def remove(self):
        self.records.remove(self.record.kernel_id)
        self.claim.release()

    def _write(self):
        try:
            self.records.write(self.record)
        except OSError as e:
            self.log.error("cannot write the metadata of kernel {kernel_id}: {error}",
                           kernel_id=self.record.kernel_id, error=str(e))


class NoRecordFile:
    """Stands in for KernelRecordFile when kernels are not recorded (tests, fakes)."""

    def launched(self, pid):
        pass

    def reserve_seq(self, seq):
        return float("inf")

    def shared(self, shares):
        pass

    def keep(self, last_seq):
        pass

    def remove(self):
        pass
