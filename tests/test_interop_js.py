"""
Run the autobahn-js interoperability suite (``tests/js``) against real routers.

Starts two ``twistd webkernel`` processes on loopback (``tests.service``), one
that admits anonymous sessions and one that requires a ticket (``--token``), then
runs each ``tests/js/*.test.js`` file with Node's test runner (``node --test``),
the router addresses in its environment, and fails with Node's output unless
every JavaScript test in the file passes.

Needs Node.js >= 20 and npm on ``PATH`` (CI installs them); ``npm ci`` fills
``tests/js/node_modules`` from ``package-lock.json`` when it is missing.
"""

import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.service import ServiceProcess

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

JS_DIR = Path(__file__).resolve().parent / "js"
JS_TEST_FILES = sorted(JS_DIR.glob("*.test.js"))
REALM = "realm1"

NPM_TIMEOUT = 300.0
NODE_FILE_TIMEOUT = 180.0


def _require_tool(name):
    """Return the path of ``name`` on PATH, or fail the test saying what is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name!r} not found on PATH: the autobahn-js interop tests need "
            "Node.js >= 20 and npm (CI installs them)."
        )
    return path


@pytest.fixture(scope="module")
def node_modules():
    """tests/js/node_modules, installed with ``npm ci`` if it is missing."""
    _require_tool("node")
    target = JS_DIR / "node_modules"
    if not target.is_dir():
        npm = _require_tool("npm")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=NPM_TIMEOUT,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return target


@pytest.fixture(scope="module")
def anonymous_router():
    """A webkernel router that admits anonymous sessions to REALM."""
    running = ServiceProcess("--anonymous", "--realm", REALM)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ticket_router():
    """A webkernel router that admits only holders of its token (``.token``)."""
    running = ServiceProcess("--realm", REALM, "--token", secrets.token_urlsafe(16))
    yield running
    running.stop()


def _node_environment(anonymous, ticket):
    env = dict(os.environ)
    env.update(
        WAMP_URL=anonymous.ws_url,
        WAMP_RAWSOCKET_URL=f"tcp://127.0.0.1:{anonymous.port}",
        WAMP_REALM=REALM,
        WAMP_TICKET_URL=ticket.ws_url,
        WAMP_TOKEN=ticket.token,
    )
    env.pop("WAMP_TICKET_AUTHID", None)
    return env


def _run_node_tests(path, env):
    """Run ``node --test path``; return (exit status, combined output)."""
    process = subprocess.Popen(
        [_require_tool("node"), "--test", "--test-force-exit", str(path)],
        cwd=JS_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=NODE_FILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output
    return process.returncode, output


@pytest.mark.parametrize("js_file", JS_TEST_FILES, ids=lambda path: path.name)
def test_autobahn_js(js_file, node_modules, anonymous_router, ticket_router):
    """Every node:test test in ``js_file`` passes against the webkernel routers."""
    env = _node_environment(anonymous_router, ticket_router)
    status, output = _run_node_tests(js_file, env)
    if status is None:
        pytest.fail(f"{js_file.name} did not finish within {NODE_FILE_TIMEOUT} s:\n{output}")
    assert status == 0, f"node --test {js_file.name} exited with {status}:\n{output}"
    assert anonymous_router.alive() and ticket_router.alive(), "a router died during the run"
