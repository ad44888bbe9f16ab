"""The notebook directory: list, read and write ``.ipynb`` files with nbformat, and nothing outside it.

Paths are relative, ``/``-separated strings (``""`` is the directory itself).
Every path is resolved (symlinks included) and refused unless it stays inside
the directory. Each refusal is an exception named for the condition and bound
to its WAMP error URI (:mod:`broker.errors`).

What a file or a content may cost is bounded before the work starts: a file
larger than ``max_size`` is not read, JSON nested deeper than
:data:`MAX_NESTING` is refused before nbformat (whose validator recurses once
per level) sees it, and a name too long for the filesystem is refused before
anything is written.
"""

import json
import os
import stat as stat_mode

import nbformat
from nbformat.v4.nbjson import BytesEncoder
from nbformat.v4.rwbase import split_lines, strip_transient

from broker import errors
from broker.atomic_files import replace_file
from broker.timestamps import iso_utc

SUFFIX = ".ipynb"
#: the largest notebook file ``get`` reads, in bytes (``--max-notebook-size``)
DEFAULT_MAX_NOTEBOOK_SIZE = 32 * 1024 * 1024
#: the deepest nesting of JSON objects and arrays a notebook may hold
MAX_NESTING = 100
#: the longest name (one path component) and the longest path, in UTF-8 bytes (Linux's limits)
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


class NotebookError(errors.Condition):
    """A request the notebook directory refuses; ``uri`` says why."""


class PathOutsideNotebookDir(NotebookError):
    """The path would leave the notebook directory."""

    uri = errors.PATH_OUTSIDE_NOTEBOOK_DIR


class NoSuchPath(NotebookError):
    """Nothing of the expected kind exists at the path."""

    uri = errors.NO_SUCH_PATH


class NotANotebook(NotebookError):
    """The path does not name a ``.ipynb`` file."""

    uri = errors.NOT_A_NOTEBOOK


class InvalidNotebook(NotebookError):
    """The file or the content is not a valid notebook."""

    uri = errors.INVALID_NOTEBOOK


class InvalidPath(NotebookError):
    """The path is not one a file can have (a name or the whole too long)."""

    uri = errors.INVALID_ARGUMENT


class NotebookNotSaved(NotebookError):
    """The filesystem refused the write (no space, no permission, read-only)."""

    uri = errors.NOTEBOOK_NOT_SAVED


class NotebookTooLarge(NotebookError):
    """The file is larger than the directory reads."""

    uri = errors.NOTEBOOK_TOO_LARGE


def _modified(stat):
    return iso_utc(stat.st_mtime)


class NotebookDirectory:
    """The ``.ipynb`` files under one directory."""

    def __init__(self, root, max_size=DEFAULT_MAX_NOTEBOOK_SIZE):
        self.root = os.path.realpath(root)
        self.max_size = max_size

    def resolve(self, path):
        """The real filesystem path of *path*; raise unless it is inside the directory."""
        parts = check_path(path)
        real = os.path.realpath(os.path.join(self.root, *[p for p in parts if p]))
        if real != self.root and not real.startswith(self.root + os.sep):
            raise PathOutsideNotebookDir(f"{path!r} leads outside the notebook directory")
        return real

    def list(self, path=""):
        """``{path, entries}``: the subdirectories and notebooks in *path* (hidden ones left out)."""
        real = self.resolve(path)
        if not os.path.isdir(real):
            raise NoSuchPath(f"no directory {path!r} in the notebook directory")
        entries = []
        with os.scandir(real) as found:
            for entry in found:
                entry_info = self._entry(path, entry)
                if entry_info is not None:
                    entries.append(entry_info)
        entries.sort(key=lambda e: (e["type"] != "directory", e["name"].lower()))
        return {"path": path.strip("/"), "entries": entries}

    def _entry(self, path, entry):
        if entry.name.startswith("."):
            return None
        relative = "/".join(p for p in (path.strip("/"), entry.name) if p)
        try:
            self.resolve(relative)  # a symlink out of the directory is not listed
            is_dir = entry.is_dir()
            stat = entry.stat()
        except (NotebookError, OSError):
            return None
        if not is_dir and not entry.name.endswith(SUFFIX):
            return None
        return {"name": entry.name, "path": relative,
                "type": "directory" if is_dir else "notebook",
                "size": None if is_dir else stat.st_size, "modified": _modified(stat)}

    def _notebook_path(self, path):
        real = self.resolve(path)
        if not path.endswith(SUFFIX):
            raise NotANotebook(f"{path!r} is not a notebook: its name must end in {SUFFIX}")
        if os.path.isdir(real):
            raise NotANotebook(f"{path!r} is a directory")
        return real

    def get(self, path):
        """``{path, name, modified, size, content}`` (content: nbformat 4 as plain JSON data).

        A file that is readable but breaks the schema is still returned, with
        ``warning`` saying what is wrong (as Jupyter opens it with a warning).
        """
        real = self._notebook_path(path)
        text, stat = self._read(path, real)
        return notebook_file(path, os.path.basename(real), text, stat)

    def _read(self, path, real):
        """The text and stat of the file at *real*, refused unread if larger than ``max_size``.

        Opened without blocking, so a FIFO named like a notebook does not hang
        the reader; anything but a regular file is refused.
        """
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NoSuchPath(f"no notebook {path!r} in the notebook directory") from None
        except OSError as e:
            raise InvalidNotebook(f"cannot read {path!r}: {e.strerror}") from None
        return read_notebook_text(path, fd, self.max_size)

    def save(self, path, content):
        """Validate *content* as an nbformat 4 notebook and write it to *path* atomically."""
        real = self._notebook_path(path)
        if not os.path.isdir(os.path.dirname(real)):
            raise NoSuchPath(f"no directory for {path!r} in the notebook directory")
        text = _validated_text(content)
        try:
            replace_file(real, text.encode("utf-8"), 0o644)
        except OSError as e:
            raise NotebookNotSaved(f"could not write {path!r}: {e.strerror or e}") from None
        stat = os.stat(real)
        return {"path": path, "name": os.path.basename(real), "modified": _modified(stat),
                "size": stat.st_size}


def read_notebook_text(path, fd, max_size):
    """The text and stat of the open file *fd* (then closed), refused unread if larger than *max_size*.

    Anything but a regular file is refused.
    """
    with os.fdopen(fd, "rb") as f:
        stat = os.fstat(f.fileno())
        if stat_mode.S_ISDIR(stat.st_mode):
            raise NotANotebook(f"{path!r} is a directory")
        if not stat_mode.S_ISREG(stat.st_mode):
            raise NotANotebook(f"{path!r} is not a regular file")
        _check_size(path, stat.st_size, max_size)
        raw = f.read(max_size + 1)
    _check_size(path, len(raw), max_size)  # it may have grown since fstat
    try:
        return raw.decode("utf-8"), stat
    except UnicodeDecodeError as e:
        raise InvalidNotebook(f"cannot read {path!r}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _check_size(path, size, max_size):
    if size > max_size:
        raise NotebookTooLarge(
            f"{path!r} is {size} bytes; this service opens notebooks of at most "
            f"{max_size} bytes (--max-notebook-size)")


def notebook_file(path, name, text, stat):
    """What ``get`` answers for the notebook *text* read from *path*.

    A file that is readable but breaks the schema is still returned, with
    ``warning`` saying what is wrong.
    """
    _check_nesting(_parsed_json(path, text), f"{path!r}")
    problems = {}
    try:
        notebook = nbformat.reads(text, as_version=4, capture_validation_error=problems)
    except Exception as e:  # nbformat raises many kinds for unreadable files
        raise InvalidNotebook(f"{path!r} is not a readable notebook: {e}") from None
    result = {"path": path, "name": name, "modified": _modified(stat),
              "size": stat.st_size, "content": json.loads(json.dumps(notebook))}
    if "ValidationError" in problems:
        result["warning"] = f"the notebook breaks the nbformat schema: {problems['ValidationError'].message}"
    return result


def check_path(path):
    """The components of the relative *path*; raise unless it is one that stays inside its directory."""
    if not isinstance(path, str):
        raise PathOutsideNotebookDir(f"a path is a string, not {type(path).__name__}")
    parts = path.split("/")
    if path.startswith("/") or "\0" in path or ".." in parts:
        raise PathOutsideNotebookDir(
            f"{path!r} leaves the notebook directory: use a path relative to it, without '..'")
    _check_lengths(parts)
    return parts


def _check_lengths(parts):
    """Refuse a path the filesystem cannot name (``ENAMETOOLONG``) before touching it."""
    sizes = [len(p.encode("utf-8", "surrogatepass")) for p in parts]
    if max(sizes) > MAX_NAME_BYTES:
        raise InvalidPath(f"a name in the path is {max(sizes)} bytes long (UTF-8); "
                          f"names may have at most {MAX_NAME_BYTES}")
    if sum(sizes) + len(sizes) > MAX_PATH_BYTES:
        raise InvalidPath(f"the path is longer than {MAX_PATH_BYTES} bytes")


def _parsed_json(path, text):
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidNotebook(f"{path!r} is not a readable notebook: its JSON is nested "
                              f"deeper than {MAX_NESTING} levels") from None
    except ValueError as e:
        raise InvalidNotebook(f"{path!r} is not a readable notebook: {e}") from None


def _check_nesting(value, what):
    """Refuse JSON objects and arrays nested deeper than :data:`MAX_NESTING` (walked without recursion)."""
    containers = (dict, list)
    if type(value) not in containers:
        return
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        for child in (value.values() if type(value) is dict else value):
            if type(child) in containers:
                if depth >= MAX_NESTING:
                    raise InvalidNotebook(f"{what} is nested deeper than {MAX_NESTING} levels "
                                          "of JSON objects and arrays")
                stack.append((child, depth + 1))


def _validated_text(content):
    if not isinstance(content, dict):
        raise InvalidNotebook(f"content must be a notebook (a JSON object), not {type(content).__name__}")
    if content.get("nbformat") != 4:
        raise InvalidNotebook("content must be an nbformat 4 notebook ('nbformat': 4)")
    minor = content.get("nbformat_minor")
    if type(minor) is not int or minor < 0:
        raise InvalidNotebook("content must have 'nbformat_minor', a non-negative integer")
    _check_nesting(content, "the content")
    try:
        notebook = nbformat.from_dict(content)
        nbformat.validate(notebook)
        return _notebook_text(notebook)
    except nbformat.ValidationError as e:
        raise InvalidNotebook(f"not a valid notebook: {e.message}") from None
    except (TypeError, ValueError, KeyError, AttributeError, AssertionError) as e:
        raise InvalidNotebook(f"not a valid notebook: {e!r}") from None


def _notebook_text(notebook):
    """``nbformat.writes(notebook, version=4)``, changing *notebook* in place.

    nbformat's writer deep-copies the notebook and validates it a second
    time; this one's notebook is a fresh copy, already validated, so the same
    steps run without those (half the time of a large save). The text is the
    same, byte for byte (``tests/test_notebooks.py`` checks it).
    """
    notebook = strip_transient(split_lines(notebook))
    return json.dumps(notebook, cls=BytesEncoder, indent=1, sort_keys=True,
                      separators=(",", ": "), ensure_ascii=False)
