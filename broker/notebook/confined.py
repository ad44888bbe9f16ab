"""A notebook folder that follows no symlink: users' own folders in multi-user mode.

In multi-user mode a student's kernel runs as their OS account in their own
folder (``--home-root/<user>``), so their code can put a symlink there, or
swap a directory for one between the service's check and its open. The
service (root) must never follow one. :class:`ConfinedFolder` therefore
resolves nothing by name: every path is walked from the folder's root one
component at a time with ``O_NOFOLLOW`` (``openat`` through ``dir_fd``), a
notebook is read from the descriptor so opened, and a save writes a
temporary file in the directory it opened and renames it there (a rename
replaces a symlink at the name, never follows it). A symlink anywhere in a
path is ``webkernel.error.path_outside_notebook_dir``; listings leave
symlinks out. A notebook saved into a folder belongs to the folder's owner
(when the service runs as root), so the user's own kernel can change it.

Paths are checked as in :class:`~broker.notebook.store.NotebookDirectory`
(relative, no ``..``, lengths) and answers have the same shapes.
"""

import errno
import os
import secrets
import stat as stat_mode

from broker.notebook.store import (
    SUFFIX,
    DEFAULT_MAX_NOTEBOOK_SIZE,
    NoSuchPath,
    NotANotebook,
    NotebookNotSaved,
    PathOutsideNotebookDir,
    _modified,
    _validated_text,
    check_path,
    notebook_file,
    read_notebook_text,
)

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ConfinedFolder:
    """The ``.ipynb`` files under *root*, reached without following any symlink."""

    def __init__(self, root, max_size=DEFAULT_MAX_NOTEBOOK_SIZE):
        self.root = os.path.abspath(root)
        self.max_size = max_size

    # -- the three operations -----------------------------------------------------------

    def list(self, path=""):
        """``{path, entries}``: subdirectories and notebooks in *path* (hidden ones and symlinks left out)."""
        parts = _components(path)
        fd = self._open_directory(path, parts)
        try:
            with os.scandir(fd) as found:
                entries = [e for e in (self._entry(path, entry) for entry in found) if e]
        finally:
            os.close(fd)
        entries.sort(key=lambda e: (e["type"] != "directory", e["name"].lower()))
        return {"path": "/".join(parts), "entries": entries}

    def get(self, path):
        """``{path, name, modified, size, content}`` of the notebook at *path*."""
        parts = self._notebook_parts(path)
        directory = self._open_directory(path, parts[:-1])
        try:
            fd = os.open(parts[-1], _FILE, dir_fd=directory)
        except OSError as e:
            raise _refusal(path, e, "no notebook", directory, parts[-1]) from None
        finally:
            os.close(directory)
        text, stat = read_notebook_text(path, fd, self.max_size)
        return notebook_file(path, parts[-1], text, stat)

    def save(self, path, content):
        """Validate *content* and write it to *path*: a temporary file renamed over it."""
        parts = self._notebook_parts(path)
        text = _validated_text(content)
        directory = self._open_directory(path, parts[:-1], missing="no directory for")
        try:
            self._check_target(path, parts[-1], directory)
            stat = _write_in(directory, parts[-1], text.encode("utf-8"), path)
        finally:
            os.close(directory)
        return {"path": path, "name": parts[-1], "modified": _modified(stat), "size": stat.st_size}

    # -- walking ----------------------------------------------------------------------------

    def _notebook_parts(self, path):
        parts = _components(path)
        if not parts or not parts[-1].endswith(SUFFIX):
            raise NotANotebook(f"{path!r} is not a notebook: its name must end in {SUFFIX}")
        return parts

    def _open_directory(self, path, parts, missing="no directory"):
        """A descriptor of the directory *parts* below the root, walked with O_NOFOLLOW."""
        try:
            fd = os.open(self.root, _DIRECTORY)
        except FileNotFoundError:
            raise NoSuchPath(f"{missing} {path!r}: the folder does not exist yet") from None
        for part in parts:
            try:
                step = os.open(part, _DIRECTORY, dir_fd=fd)
            except OSError as e:
                raise _refusal(path, e, missing, fd, part) from None
            finally:
                os.close(fd)
            fd = step
        return fd

    def _entry(self, path, entry):
        if entry.name.startswith(".") or entry.is_symlink():
            return None
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            info = entry.stat(follow_symlinks=False)
        except OSError:
            return None
        if not is_dir and not (entry.name.endswith(SUFFIX) and stat_mode.S_ISREG(info.st_mode)):
            return None
        relative = "/".join(p for p in (path.strip("/"), entry.name) if p)
        return {"name": entry.name, "path": relative, "type": "directory" if is_dir else "notebook",
                "size": None if is_dir else info.st_size, "modified": _modified(info)}

    @staticmethod
    def _check_target(path, name, directory):
        try:
            info = os.stat(name, dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat_mode.S_ISLNK(info.st_mode):
            raise PathOutsideNotebookDir(f"{path!r} is a symbolic link: notebooks here are files")
        if stat_mode.S_ISDIR(info.st_mode):
            raise NotANotebook(f"{path!r} is a directory")


def _components(path):
    return [p for p in check_path(path) if p and p != "."]


def _is_link(directory, name):
    try:
        return stat_mode.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _refusal(path, error, missing, directory, name):
    """The condition for an ``OSError`` met opening *name* in *directory* on the way along *path*."""
    if error.errno == errno.ENOENT:
        return NoSuchPath(f"{missing} {path!r} in the notebook folder")
    if error.errno in (errno.ELOOP, errno.EMLINK) or _is_link(directory, name):
        return PathOutsideNotebookDir(f"{path!r} goes through a symbolic link: notebook "
                                      f"folders are walked without following links")
    if error.errno == errno.ENOTDIR:
        return NoSuchPath(f"{missing} {path!r}: a part of it is not a directory")
    return NotebookNotSaved(f"cannot reach {path!r}: {error.strerror}")


def _write_in(directory, name, data, path):
    """Write *data* as *name* in the open *directory*, atomically; the stat of the result."""
    temporary = f".wk-{secrets.token_hex(8)}.tmp"
    folder = os.fstat(directory)
    try:
        fd = os.open(temporary, _NEW_FILE, 0o644, dir_fd=directory)
        try:
            _write_all(fd, data)
            if os.geteuid() == 0 and folder.st_uid != 0:
                os.fchown(fd, folder.st_uid, folder.st_gid)  # the folder's owner's file
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except OSError as e:
        try:
            os.unlink(temporary, dir_fd=directory)
        except OSError:
            pass
        raise NotebookNotSaved(f"could not write {path!r}: {e.strerror or e}") from None


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
