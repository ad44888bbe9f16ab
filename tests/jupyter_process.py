"""Start a real ``jupyter server`` (or ``jupyter lab``) with ``--gateway-url`` in a subprocess.

It listens on a free loopback port (``--ServerApp.port=0``) read from the
URL it logs, with its own runtime and config directories, and waits at most
*timeout* seconds to be serving. Used by the gateway's tests and bench.
"""

import os
import re
import socket
import time
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.service import stop_process

_SERVING = re.compile(r"(http://127\.0\.0\.1:(\d+)/)")


class JupyterServerProcess:
    """``python -m jupyter_server`` (or another app module) using a gateway at *gateway_url*."""

    def __init__(self, gateway_url, gateway_token=None, token="", app="jupyter_server",
                 timeout=60, extra=()):
        self.home = tempfile.mkdtemp(prefix="webkernel-jupyter-")
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(self.home, "runtime"),
                   JUPYTER_CONFIG_DIR=os.path.join(self.home, "config"),
                   PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", app, "--allow-root", f"--GatewayClient.url={gateway_url}",
                   f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1",
                   "--ServerApp.port=0", "--ServerApp.port_retries=0",
                   "--ServerApp.open_browser=False", f"--ServerApp.root_dir={self.home}",
                   "--GatewayClient.request_timeout=60", *extra]
        if gateway_token:
            command.append(f"--GatewayClient.auth_token={gateway_token}")
        if not token:
            command.append("--ServerApp.disable_check_xsrf=True")  # loopback, tests only
        self.process = subprocess.Popen(command, cwd=self.home, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.url = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        if not self._ready.wait(timeout) or self.url is None or not self._accepts(deadline):
            self.stop()
            raise RuntimeError("jupyter server did not start:\n" + self.log())

    def _accepts(self, deadline):
        """True once the logged port takes connections (it is logged a moment before), by *deadline*."""
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                return True
            except OSError:
                self._ready.clear()
                self._ready.wait(0.1)   # bounded: the next log line or a tenth of a second
        return False

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            found = _SERVING.search(line)
            if found and self.url is None:
                self.url = found.group(1)
                self.port = int(found.group(2))
                self._ready.set()
        self._ready.set()

    def log(self):
        return "".join(self.lines)

    def path(self, name):
        return Path(self.home) / name

    def stop(self, timeout=15):
        stop_process(self.process, timeout)
