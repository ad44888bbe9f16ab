"""Every URI of the notebook API: its procedures (see docs/notebook.md); its errors are in :mod:`broker.errors`."""

NOTEBOOKS_LIST = "webkernel.notebooks.list"
NOTEBOOKS_GET = "webkernel.notebooks.get"
NOTEBOOKS_SAVE = "webkernel.notebooks.save"

