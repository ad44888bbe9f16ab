"""The notebook session as a twistd service: attached to the embedded router on start.

It joins with its own role, ``webkernel_notebooks``, which may register the
notebook procedures and nothing else (:class:`broker.auth.DefaultAuthorizer`).
Its file work runs in a bounded thread pool of its own
(:mod:`broker.notebook.workers`), started and stopped with the service.
"""

from autobahn.wamp import types
from twisted.application import service

from broker.auth import NOTEBOOKS_ROLE, Principal
from broker.notebook.session import NotebookSession
from broker.notebook.store import DEFAULT_MAX_NOTEBOOK_SIZE, NotebookDirectory
from broker.notebook.workers import DEFAULT_LIMIT, DEFAULT_THREADS, BoundedWorkers, notebook_pool


class NotebookService(service.Service):
    """Serves ``webkernel.notebooks.*`` for the files under *notebook_dir*, or in *folders*.

    *attach* is ``attach(app_session, principal)``, handed over by the wiring.
    *folders* (multi-user mode: :class:`broker.classroom.notebooks.UserFolders`)
    picks each caller's folder; without it everyone has *notebook_dir*.
    """

    def __init__(self, attach, realm, reactor, notebook_dir, max_size=DEFAULT_MAX_NOTEBOOK_SIZE,
                 threads=DEFAULT_THREADS, limit=DEFAULT_LIMIT, pool=None, folders=None):
        self.attach = attach
        self.realm = realm
        self.reactor = reactor
        self.folders = folders
        self.directory = NotebookDirectory(notebook_dir, max_size) if folders is None else None
        self.pool = pool if pool is not None else notebook_pool(threads)
        self.workers = BoundedWorkers(reactor, self.pool, limit)
        self.session = None

    def startService(self):
        super().startService()
        self.pool.start()
        self.session = NotebookSession(types.ComponentConfig(realm=self.realm), self.directory,
                                       run=self.workers.run, folders=self.folders)
        self.attach(self.session, Principal("notebooks", NOTEBOOKS_ROLE, "local"))

    def stopService(self):
        """Stop the pool: work already running finishes (a save is never cut off half written)."""
        super().stopService()
        self.pool.stop()
