"""Start the real ``twistd webkernel`` in a subprocess for integration tests.

The service listens on port 0 and logs the URL it serves; the port is read
from that line, so there is no race for a free port. Waits are bounded.
"""

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SERVING = re.compile(r"webkernel is serving at http://127\.0\.0\.1:(\d+)/(\?token=(\S+))?")


class ServiceProcess:
    """A running ``twistd -n webkernel`` and what it logged."""

    def __init__(self, *args, timeout=30, module=None, ready=None, nofile=None, command=None,
                 env=None, cwd=ROOT, wrapper=()):
        """``twistd webkernel *args``, or ``python -m module *args`` (a test service that logs the same line).

        *nofile* sets its RLIMIT_NOFILE (soft and hard). *command* runs that
        instead (another program: *ready* says when it is up); *env* adds to
        its environment. *wrapper* goes before the command (``ip netns exec
        NAME``: a program that execs it, so the process is the service's own).
        """
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **(env or {}))
        command = [*wrapper, *(command or [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", "webkernel", "--listen", "tcp:0:interface=127.0.0.1", *args,
        ] if module is None else [sys.executable, "-m", module, *args])]
        self.process = subprocess.Popen(
            command, cwd=str(cwd), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            preexec_fn=None if nofile is None else lambda: resource.setrlimit(
                resource.RLIMIT_NOFILE, (nofile, nofile)),
        )
        self.lines = []
        self._changed = threading.Condition()  # a line came, or the output ended
        self._ended = False
        self._ready_pattern = re.compile(ready) if ready else None
        self._ready = threading.Event()
        self.port = self.token = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or (self.port is None and ready is None):
            self.stop()
            raise RuntimeError("service did not start:\n" + self.log())

    def _read(self):
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
            found = _SERVING.search(line)
            if found and not self._ready.is_set():
                self.port = int(found.group(1))
                self.token = found.group(3)
                self._ready.set()
            if self._ready_pattern and self._ready_pattern.search(line):
                self._ready.set()
        with self._changed:
            self._ended = True
            self._changed.notify_all()
        self._ready.set()

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def rs_url(self):
        return f"rs://127.0.0.1:{self.port}"

    def log(self):
        return "".join(self.lines)

    def wait_for(self, pattern, count=1, timeout=60):
        """Block until *count* lines match *pattern* (bounded); raise with the log if not."""
        found = re.compile(pattern)

        def enough():
            return self._ended or sum(1 for line in self.lines if found.search(line)) >= count
        with self._changed:
            self._changed.wait_for(enough, timeout)
        if sum(1 for line in list(self.lines) if found.search(line)) < count:
            raise RuntimeError(f"no {count} lines {pattern!r} in:\n" + self.log())

    def alive(self):
        return self.process.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, then wait (bounded); return the exit code."""
        return stop_process(self.process, timeout)


def stop_process(process, timeout=15):
    """SIGTERM *process* if it runs, wait at most *timeout* s, else SIGKILL it; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class ServicePerClass:
    """A TestCase mixin: one service (``cls.service``) for the class, with its own kernel directory.

    The service runs with ``--kernel-dir`` a new temporary ``cls.kernel_dir``
    (named after ``kernel_dir_prefix``) and ``service_options``; both go when
    the class is done.
    """

    kernel_dir_prefix = "webkernel-test-"
    service_options = ()

    @classmethod
    def setUpClass(cls):
        cls.kernel_dir = tempfile.mkdtemp(prefix=cls.kernel_dir_prefix)
        cls.service = ServiceProcess("--kernel-dir", cls.kernel_dir, *cls.service_options)

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()
        shutil.rmtree(cls.kernel_dir, ignore_errors=True)
