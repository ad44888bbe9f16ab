"""Keep the tests that need a process of their own out of the main pytest process.

txaio binds a process to one framework (see tests/asyncio_clients/README.md),
and crochet runs the global reactor in a thread, which trial's tests cannot
share (see tests/blocking_clients/README.md), and Playwright's sync API runs
an event loop of its own (see tests/browser/README.md). Each directory runs in its own
pytest process (./run-tests does that) and is collected only when asked for.
"""

from pathlib import Path

SEPARATE_DIRS = [Path(__file__).parent / name for name in ("asyncio_clients", "blocking_clients", "browser")]


def pytest_ignore_collect(collection_path, config):
    targets = [Path(a.split("::")[0]).resolve() for a in config.args]
    for directory in SEPARATE_DIRS:
        asked_for = any(t == directory or directory in t.parents for t in targets)
        if directory in (collection_path, *collection_path.parents) and not asked_for:
            return True
    return None
