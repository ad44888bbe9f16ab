"""Every URI of the notebook API: procedures and errors (see docs/notebook.md)."""

NOTEBOOKS_LIST = "webkernel.notebooks.list"
NOTEBOOKS_GET = "webkernel.notebooks.get"
NOTEBOOKS_SAVE = "webkernel.notebooks.save"

#: the path leaves the notebook directory (``..``, an absolute path, a symlink out)
PATH_OUTSIDE_NOTEBOOK_DIR = "webkernel.error.path_outside_notebook_dir"
#: nothing (or not the expected kind of thing) exists at the path
NO_SUCH_PATH = "webkernel.error.no_such_path"
#: get or save of a path that does not name a ``.ipynb`` file
NOT_A_NOTEBOOK = "webkernel.error.not_a_notebook"
#: the file is not a readable notebook, or the content to save is not a valid one
INVALID_NOTEBOOK = "webkernel.error.invalid_notebook"
