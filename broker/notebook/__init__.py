"""Notebook files for the page: list, open and save ``.ipynb`` files in one directory.

* :mod:`broker.notebook.store`: the files, with path checks (pure, synchronous);
* :mod:`broker.notebook.session`: an in-process WAMP session registering
  ``webkernel.notebooks.*`` (see docs/notebook.md);
* :mod:`broker.notebook.page`: the notebook page at ``/`` and its built assets
  at ``/static/``;
* :mod:`broker.notebook.uris`: every URI of the notebook API.
"""
