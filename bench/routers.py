"""
Start and stop the routers under test: Crossbar.io and webkernel.

Each router runs as a child process listening for WAMP over WebSocket on a free
loopback port at path ``/ws``, realm ``realm1``, anonymous clients allowed
everything.  ``start_router`` returns once a client can join the realm.
"""

import json
import os
import socket
import time
from dataclasses import dataclass

from twisted.internet.task import deferLater

from processes import LoggedProcess, ProcessFailed
from wamp_client import close_sessions, connect_session

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
CROSSBAR_BIN = os.path.join(BENCH_DIR, ".venv-crossbar", "bin", "crossbar")
TWISTD_BIN = os.path.join(REPO_DIR, ".venv", "bin", "twistd")
REALM = "realm1"
POLL_INTERVAL = 0.1
PROBE_TIMEOUT = 2.0


@dataclass
class RouterSpec:
    """How to run one router: its command line, working directory and port."""

    name: str
    argv: list
    port: int
    cwd: str = REPO_DIR
    env: dict = None

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}/ws"


def free_port():
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


ANONYMOUS_ROLE = {
    "name": "anonymous",
    "permissions": [{
        "uri": "", "match": "prefix",
        "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
        "disclose": {"caller": False, "publisher": False},
        "cache": True,
    }],
}


def crossbar_config(port, realm=REALM, roles=(ANONYMOUS_ROLE,), auth=None):
    """A minimal Crossbar.io node: one router worker, one realm, Web transport with /ws.

    *roles* are the realm's roles (Crossbar.io's ``permissions`` format); *auth*
    the WebSocket's ``auth`` section (None: anonymous only). The router
    benchmark uses the defaults; tests/crossbar.py gives webkernel's roles.
    """
    websocket = {"type": "websocket", "serializers": ["json", "msgpack", "cbor"]}
    if auth is not None:
        websocket["auth"] = auth
    web = {
        "type": "web",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port, "backlog": 1024},
        "paths": {
            "/": {"type": "json", "value": {"router": "crossbar"}},
            "ws": websocket,
        },
    }
    router = {"type": "router", "realms": [{"name": realm, "roles": list(roles)}],
              "transports": [web]}
    return {"version": 2, "controller": {}, "workers": [router]}


def crossbar_spec(work_dir):
    """Write a Crossbar.io node directory under ``work_dir`` and return how to run it."""
    port = free_port()
    cbdir = os.path.join(work_dir, "crossbar-node")
    os.makedirs(cbdir, exist_ok=True)
    with open(os.path.join(cbdir, "config.json"), "w") as config:
        json.dump(crossbar_config(port), config, indent=2)
    argv = [CROSSBAR_BIN, "start", "--cbdir", cbdir, "--loglevel", "warn", "--color", "false"]
    return RouterSpec("crossbar", argv, port, cwd=cbdir)


def webkernel_spec(work_dir):
    """Return how to run webkernel's embedded router, anonymous, on realm1."""
    port = free_port()
    argv = [
        TWISTD_BIN, "-n", "--pidfile=", "webkernel", "--anonymous", "--realm", REALM,
        "--listen", f"tcp:{port}:interface=127.0.0.1",
    ]
    return RouterSpec("webkernel", argv, port, env=working_tree_env())


def working_tree_env():
    """The environment that makes twistd import webkernel from this work tree.

    Without it twistd would run whatever copy was last installed into the
    virtualenv, which may lag behind the code under review.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_DIR, env.get("PYTHONPATH")]))
    return env


ROUTER_SPECS = {"crossbar": crossbar_spec, "webkernel": webkernel_spec}


async def start_router(reactor, spec, log_dir, timeout=30.0):
    """Run the router of ``spec``; return its process once a client can join realm1."""
    log_path = os.path.join(log_dir, f"{spec.name}.log")
    router = LoggedProcess(spec.name, log_path)
    router.spawn(reactor, spec.argv, cwd=spec.cwd, env=spec.env)
    try:
        await wait_joinable(reactor, router, spec.url, timeout)
    except BaseException:
        await router.stop(reactor)
        raise
    return router


async def wait_joinable(reactor, process, url, timeout):
    """Poll ``url`` until a WAMP session joins the realm, while ``process`` runs.

    An open port is not enough: Crossbar.io listens before it has attached
    its WebSocket service to the path.
    """
    deadline = time.monotonic() + timeout
    while process.running and time.monotonic() < deadline:
        try:
            probe = await connect_session(reactor, url, REALM, timeout=PROBE_TIMEOUT)
        except Exception:
            await deferLater(reactor, POLL_INTERVAL, lambda: None)
            continue
        await close_sessions(reactor, [probe])
        return
    why = "exited" if not process.running else f"not joinable after {timeout:g} s"
    raise ProcessFailed(f"{process.name} {why} ({url}):\n{process.log_tail()}")
