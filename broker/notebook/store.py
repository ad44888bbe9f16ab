"""The notebook directory: list, read and write ``.ipynb`` files with nbformat, and nothing outside it.

Paths are relative, ``/``-separated strings (``""`` is the directory itself).
Every path is resolved (symlinks included) and refused unless it stays inside
the directory. Each refusal is an exception named for the condition and bound
to its WAMP error URI (:mod:`broker.notebook.uris`).
"""

import json
import os
import tempfile

import nbformat

from broker.notebook import uris
from broker.timestamps import iso_utc

SUFFIX = ".ipynb"


class NotebookError(Exception):
    """A request the notebook directory refuses; ``uri`` says why."""

    uri = None


class PathOutsideNotebookDir(NotebookError):
    """The path would leave the notebook directory."""

    uri = uris.PATH_OUTSIDE_NOTEBOOK_DIR


class NoSuchPath(NotebookError):
    """Nothing of the expected kind exists at the path."""

    uri = uris.NO_SUCH_PATH


class NotANotebook(NotebookError):
    """The path does not name a ``.ipynb`` file."""

    uri = uris.NOT_A_NOTEBOOK


class InvalidNotebook(NotebookError):
    """The file or the content is not a valid notebook."""

    uri = uris.INVALID_NOTEBOOK


def _modified(stat):
    return iso_utc(stat.st_mtime)


class NotebookDirectory:
    """The ``.ipynb`` files under one directory."""

    def __init__(self, root):
        self.root = os.path.realpath(root)

    def resolve(self, path):
        """The real filesystem path of *path*; raise unless it is inside the directory."""
        if not isinstance(path, str):
            raise PathOutsideNotebookDir(f"a path is a string, not {type(path).__name__}")
        parts = path.split("/")
        if path.startswith("/") or "\0" in path or ".." in parts:
            raise PathOutsideNotebookDir(
                f"{path!r} leaves the notebook directory: use a path relative to it, without '..'")
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
        try:
            with open(real, encoding="utf-8") as f:
                text = f.read()
            stat = os.stat(real)
        except FileNotFoundError:
            raise NoSuchPath(f"no notebook {path!r} in the notebook directory") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidNotebook(f"cannot read {path!r}: {e}") from None
        problems = {}
        try:
            notebook = nbformat.reads(text, as_version=4, capture_validation_error=problems)
        except Exception as e:  # nbformat raises many kinds for unreadable files
            raise InvalidNotebook(f"{path!r} is not a readable notebook: {e}") from None
        result = {"path": path, "name": os.path.basename(real), "modified": _modified(stat),
                  "size": stat.st_size, "content": json.loads(json.dumps(notebook))}
        if "ValidationError" in problems:
            result["warning"] = f"the notebook breaks the nbformat schema: {problems['ValidationError'].message}"
        return result

    def save(self, path, content):
        """Validate *content* as an nbformat 4 notebook and write it to *path* atomically."""
        real = self._notebook_path(path)
        if not os.path.isdir(os.path.dirname(real)):
            raise NoSuchPath(f"no directory for {path!r} in the notebook directory")
        text = _validated_text(content)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(real), prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, real)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        stat = os.stat(real)
        return {"path": path, "name": os.path.basename(real), "modified": _modified(stat),
                "size": stat.st_size}


def _validated_text(content):
    if not isinstance(content, dict):
        raise InvalidNotebook(f"content must be a notebook (a JSON object), not {type(content).__name__}")
    if content.get("nbformat") != 4:
        raise InvalidNotebook("content must be an nbformat 4 notebook ('nbformat': 4)")
    try:
        notebook = nbformat.from_dict(content)
        nbformat.validate(notebook)
        return nbformat.writes(notebook, version=4)
    except nbformat.ValidationError as e:
        raise InvalidNotebook(f"not a valid notebook: {e.message}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise InvalidNotebook(f"not a valid notebook: {e}") from None
