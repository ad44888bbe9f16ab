"""Hand-out and collect: notebooks copied between the teacher's folder and each student's.

Pure file logic over *folders*: ``folder_of(user)`` answers that user's
notebook folder, an object with a ``root`` and the notebook store's
``get(path)`` and ``save(path, content)`` (in multi-user mode each user's
folder under ``--home-root``, a :class:`~broker.notebook.confined.ConfinedFolder`
that follows no symlink; :class:`broker.notebook.store.NotebookDirectory`
in tests). ``collected/<stem>`` is made by :func:`make_dirs`, which follows
no symlink either. The session runs these off the reactor.

* :func:`hand_out` copies the teacher's notebook into each student's folder
  under its own name. A student who already has a file of that name keeps
  it: if it is the same notebook nothing is written (``unchanged``),
  otherwise the copy goes under a new name ``<stem>-2.ipynb``, ``-3`` … (the
  first free one, at most :data:`MAX_COPIES`): a student's changed copy is
  never overwritten.
* :func:`collect` reads ``<name>`` from each student's folder and saves it as
  ``collected/<stem>/<student>.ipynb`` in the teacher's folder (replacing an
  earlier collection's), and says who has none.
"""

import os
import posixpath

from broker.kernel import arguments
from broker.notebook.store import NoSuchPath, PathOutsideNotebookDir

#: the most renamed copies of one hand-out a student's folder may get
MAX_COPIES = 99
COLLECTED = "collected"


def stem_of(path):
    """``lesson1`` of ``intro/lesson1.ipynb``; refuses a path that names no notebook."""
    arguments.text("path", path)
    name = posixpath.basename(path.strip("/"))
    if not name.endswith(".ipynb") or name.startswith("."):
        raise arguments.refuse(f"{path!r} names no notebook: give a path ending in .ipynb "
                               "whose name does not start with '.'")
    return name[:-len(".ipynb")]


def hand_out(folder_of, teacher, path, students):
    """``{student: {status: handed_out / unchanged / renamed, path}}`` after copying *path* to each."""
    stem = stem_of(path)
    content = folder_of(teacher).get(path)["content"]
    return {student: _give(folder_of(student), stem, content) for student in students}


def _give(folder, stem, content):
    for number in range(1, MAX_COPIES + 1):
        name = f"{stem}.ipynb" if number == 1 else f"{stem}-{number}.ipynb"
        try:
            there = folder.get(name)["content"]
        except NoSuchPath:
            folder.save(name, content)
            return {"status": "handed_out" if number == 1 else "renamed", "path": name}
        if there == content:
            return {"status": "unchanged", "path": name}
    return {"status": "too_many_copies", "path": None}


def collect(folder_of, teacher, name, students):
    """``{path, collected: [student…], missing: [student…]}``: *name* of each student into the teacher's folder."""
    stem = stem_of(name)
    into = posixpath.join(COLLECTED, stem)
    mine = folder_of(teacher)
    make_dirs(mine.root, into)
    collected, missing = [], []
    for student in students:
        try:
            content = folder_of(student).get(name)["content"]
        except NoSuchPath:
            missing.append(student)
            continue
        mine.save(posixpath.join(into, f"{student}.ipynb"), content)
        collected.append(student)
    return {"path": into, "collected": collected, "missing": missing}


def make_dirs(root, path):
    """Make *path*'s directories under *root*, following no symlink; new ones get *root*'s owner.

    Each component is opened with ``O_NOFOLLOW`` relative to its parent (a
    symlink a user planted in their own folder is refused, never followed).
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags)
    owner = os.fstat(fd)
    try:
        for part in [p for p in path.split("/") if p]:
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                made = True
            except FileExistsError:
                made = False
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as e:  # ELOOP, ENOTDIR: a symlink or a file where a folder should be
                raise PathOutsideNotebookDir(
                    f"{path!r} in your folder is not a plain folder ({e.strerror}): "
                    "move it away to collect") from None
            os.close(fd)
            fd = child
            if made and os.geteuid() == 0:
                os.fchown(fd, owner.st_uid, owner.st_gid)
    finally:
        os.close(fd)


class HomeFolders:
    """``folder_of(user)`` and ``ensure(users)`` over multi-user mode's folders (:class:`~broker.classroom.notebooks.UserFolders`).

    Each user's folder is their own ``--home-root/<user>`` (one that follows no
    symlink); ``ensure`` makes the homes of those who have none yet (their OS
    account's, as their first save would).
    """

    def __init__(self, folders):
        from broker.classroom.notebooks import OwnFolder
        self.folders, self._folder = folders, OwnFolder

    def folder_of(self, user):
        return self._folder(self.folders.home(user), self.folders.max_size)

    def ensure(self, users):
        from twisted.internet import defer
        return defer.gatherResults([defer.maybeDeferred(self.folders.ensure_home, user)
                                    for user in users
                                    if not os.path.isdir(self.folders.home(user))])
