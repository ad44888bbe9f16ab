"""Hand-out and collect: notebooks copied between the teacher's folder and each student's.

Pure file logic over *folders*: ``folder_of(user)`` answers that user's
notebook folder, an object with the notebook store's ``get(path)`` and
``save(path, content)`` (:class:`broker.notebook.store.NotebookDirectory`
in tests; in multi-user mode each user's folder under ``--home-root``, one
that follows no symlink) and ``makedirs(path)``. The session runs these off
the reactor.

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

import posixpath

from broker.kernel import arguments
from broker.notebook.store import NoSuchPath

#: the most renamed copies of one hand-out a student's folder may get
MAX_COPIES = 99
COLLECTED = "collected"


def stem_of(path):
    """``lesson1`` of ``intro/lesson1.ipynb``; refuses a path that names no notebook."""
    arguments.text("path", path)
    name = posixpath.basename(path.strip("/"))
    if not name.endswith(".ipynb") or name == ".ipynb":
        raise arguments.refuse(f"{path!r} names no notebook: give a path ending in .ipynb")
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
    mine.makedirs(into)
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
