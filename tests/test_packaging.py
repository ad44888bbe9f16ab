"""The package installs what the service imports: every package of the tree is listed in setup.cfg.

``./serve`` runs the *installed* webkernel (``pip install .``), while the
tests import the work tree; a package missing from ``setup.cfg``'s explicit
list (``twisted.plugins`` has no ``__init__.py``, so ``find:`` cannot be used)
passes every other test and breaks the service at start.
"""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def listed_packages():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return set(config["options"]["packages"].split())


def tree_packages():
    found = set()
    for top in ("broker", "plugins"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_of_the_tree_is_installed():
    """A package directory (with __init__.py) not in setup.cfg's list would be left out of ./serve's install."""
    assert tree_packages() - listed_packages() == set()


def test_every_listed_package_exists():
    """setup.cfg names no package the tree no longer has (the plugin namespace aside)."""
    assert listed_packages() - tree_packages() == {"twisted.plugins"}
