"""What every test process shares: separate directories, the integration marker, a clean global reactor.

* txaio binds a process to one framework (see tests/asyncio_clients/README.md),
  crochet runs the global reactor in a thread, which trial's tests cannot
  share (see tests/blocking_clients/README.md), and Playwright's sync API runs
  an event loop of its own (see tests/browser/README.md). Each of those
  directories runs in its own pytest process (./run-tests does that) and is
  collected only when asked for; every test in them is an integration test.
* A unit test (one not marked ``integration``) must not leave a timer on the
  global reactor: it would fire, or fail a trial test as unclean, in whatever
  test runs next, so the suite would pass or fail by its order. Such a test
  fails here, at its own teardown.
* A unit test must not start a process either (``subprocess``, ``os.fork``,
  ``posix_spawn``, which ``reactor.spawnProcess`` uses): a test that does is
  an integration test, and must say so, so ``-m "not integration"`` stays fast.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SEPARATE_DIRS = [Path(__file__).parent / name for name in ("asyncio_clients", "blocking_clients", "browser")]


def pytest_ignore_collect(collection_path, config):
    targets = [Path(a.split("::")[0]).resolve() for a in config.args]
    for directory in SEPARATE_DIRS:
        asked_for = any(t == directory or directory in t.parents for t in targets)
        if directory in (collection_path, *collection_path.parents) and not asked_for:
            return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if any(directory in path.parents for directory in SEPARATE_DIRS):
            item.add_marker(pytest.mark.integration)


#: what starting a process goes through: subprocess, and Twisted's process reactor
_SPAWNERS = [(subprocess.Popen, "_execute_child"), (os, "fork"), (os, "posix_spawn"),
             (os, "posix_spawnp")]


def _recording(started, name, original):
    def spawn(*args, **kwargs):
        started.append(name)
        return original(*args, **kwargs)
    return spawn


@pytest.fixture(autouse=True)
def _no_process_started_by_a_unit_test(request, monkeypatch):
    """Fail a unit test that starts a process: it is an integration test."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    started = []
    for owner, name in _SPAWNERS:
        if hasattr(owner, name):
            monkeypatch.setattr(owner, name, _recording(started, name, getattr(owner, name)))
    yield
    if started:
        pytest.fail(f"a unit test started a process ({', '.join(started)}): "
                    f"mark it integration (see tests/README.md)", pytrace=False)


def _global_timers():
    reactor = sys.modules.get("twisted.internet.reactor")
    return set() if reactor is None else {c for c in reactor.getDelayedCalls() if c.active()}


@pytest.fixture(autouse=True)
def _no_timer_left_on_the_global_reactor(request):
    """Fail a unit test that leaves a delayed call on the global reactor (and cancel it)."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    before = _global_timers()
    yield
    left = [c for c in _global_timers() - before if c.active()]
    for call in left:
        call.cancel()
    if left:
        pytest.fail(f"a unit test left timers on the global reactor: {left!r}; "
                    f"pass a Clock (or mark the test integration)", pytrace=False)
