"""Keep the asyncio-client tests out of a pytest process that runs Twisted clients.

txaio binds a process to one framework; see tests/asyncio_clients/README.md.
"""

from pathlib import Path

ASYNCIO_DIR = Path(__file__).parent / "asyncio_clients"


def pytest_ignore_collect(collection_path, config):
    targets = [Path(a.split("::")[0]).resolve() for a in config.args]
    asked_for_asyncio = any(t == ASYNCIO_DIR or ASYNCIO_DIR in t.parents for t in targets)
    if ASYNCIO_DIR in (collection_path, *collection_path.parents) and not asked_for_asyncio:
        return True
    return None
