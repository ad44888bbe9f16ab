"""Whose notebook folder a call works on in ``--users`` mode.

The notebook service knows no roles: the wiring hands it *folders*, an object
with ``folder_for(authid, authrole, action)`` (a folder, or a Deferred of
one, with ``list``, ``get`` and ``save``). In single-token mode that is
:class:`broker.notebook.session.SharedFolder` (the one ``--notebook-dir``);
in multi-user mode :class:`UserFolders`, by the caller's identity, which the
classroom authorizer always discloses to the notebook service:

* **student**: their own folder, ``<home root>/<name>`` (their kernels' working
  directory); their paths are relative to it, so no path names anything else;
* **teacher**: the home root: ``<user>/<path>`` is in that user's folder;
  saves only inside a user's folder;
* **observer**: the home root, read only (list and get);
* anyone else, or a caller not disclosed: ``wamp.error.not_authorized``.

Every folder is a :class:`~broker.notebook.confined.ConfinedFolder`: students'
code can put symlinks in their own folder, and the service follows none.
"""

import os

from twisted.internet import defer

from broker import errors
from broker.classroom import roles
from broker.notebook.confined import ConfinedFolder
from broker.notebook.store import DEFAULT_MAX_NOTEBOOK_SIZE, PathOutsideNotebookDir, check_path

READS = ("list", "get")


class OwnFolder(ConfinedFolder):
    """A student's folder: one that does not exist yet lists as empty (it is made on their first save)."""

    def list(self, path=""):
        if not os.path.isdir(self.root) and not [p for p in check_path(path) if p and p != "."]:
            return {"path": "", "entries": []}
        return super().list(path)


class EveryonesFolders(ConfinedFolder):
    """The home root as teachers and observers see it: one folder per user."""

    def save(self, path, content):
        if len([p for p in check_path(path) if p and p != "."]) < 2:
            raise PathOutsideNotebookDir(
                f"{path!r} is not in a user's folder: in multi-user mode a notebook is saved "
                f"as <user>/<name>.ipynb")
        return super().save(path, content)


class UserFolders:
    """Each student's own folder under *home_root*; all of them for teachers (and, read only, observers).

    *ensure_home* ``(user)`` makes a user's folder (a Deferred; in the
    service, the OS account's home of :mod:`broker.kernel.accounts`), called
    when a student saves before their folder exists.
    """

    def __init__(self, home_root, max_size=DEFAULT_MAX_NOTEBOOK_SIZE, ensure_home=None):
        self.root = os.path.abspath(home_root)
        self.max_size = max_size
        self.ensure_home = ensure_home or (lambda user: os.makedirs(self.home(user), 0o700, exist_ok=True))
        self.everyone = EveryonesFolders(self.root, max_size)

    def home(self, user):
        return os.path.join(self.root, user)

    def folder_for(self, authid, authrole, action):
        """The folder *action* (``list``, ``get``, ``save``) works on for this caller, or a Deferred of it."""
        if authrole == roles.TEACHER or (authrole == roles.OBSERVER and action in READS):
            return self.everyone
        if authrole == roles.OBSERVER:
            raise errors.NotAuthorized("an observer may list and open notebooks, not save them")
        if authid is None or authrole is None:
            raise errors.NotAuthorized(
                "the router did not disclose who is calling, so no folder is theirs: in "
                "multi-user mode notebooks are served only to disclosed callers (on "
                "Crossbar.io, disclose the caller on the notebook procedures: docs/scaling.md)")
        if authrole != roles.STUDENT or not isinstance(authid, str) or not authid \
                or "/" in authid or authid in (".", ".."):
            raise errors.NotAuthorized("notebooks are served to signed-in users only")
        folder = OwnFolder(self.home(authid), self.max_size)
        if action == "save" and not os.path.isdir(folder.root):
            return defer.maybeDeferred(self.ensure_home, authid).addCallback(lambda _: folder)
        return folder
