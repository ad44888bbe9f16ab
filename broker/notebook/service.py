"""The notebook session as a twistd service: attached to the embedded router on start.

It joins with its own role, ``webkernel_notebooks``, which may register the
notebook procedures and nothing else (:class:`broker.auth.DefaultAuthorizer`).
"""

from autobahn.wamp import types
from twisted.application import service

from broker.auth import NOTEBOOKS_ROLE, Principal
from broker.notebook.session import NotebookSession, in_thread_pool
from broker.notebook.store import DEFAULT_MAX_NOTEBOOK_SIZE, NotebookDirectory


class NotebookService(service.Service):
    """Serves ``webkernel.notebooks.*`` for the files under *notebook_dir*.

    *attach* is ``attach(app_session, principal)``, handed over by the wiring.
    """

    def __init__(self, attach, realm, reactor, notebook_dir, max_size=DEFAULT_MAX_NOTEBOOK_SIZE):
        self.attach = attach
        self.realm = realm
        self.reactor = reactor
        self.directory = NotebookDirectory(notebook_dir, max_size)
        self.session = None

    def startService(self):
        super().startService()
        self.session = NotebookSession(types.ComponentConfig(realm=self.realm), self.directory,
                                       run=in_thread_pool(self.reactor))
        self.attach(self.session, Principal("notebooks", NOTEBOOKS_ROLE, "local"))
