"""The notebook session as a twistd service: attached to the embedded router on start."""

from autobahn.wamp import types
from twisted.application import service

from broker.auth import KERNEL_HOST_ROLE, Principal
from broker.notebook.session import NotebookSession, in_thread_pool
from broker.notebook.store import NotebookDirectory
from broker.router.local import attach


class NotebookService(service.Service):
    """Serves ``webkernel.notebooks.*`` for the files under *notebook_dir*."""

    def __init__(self, router, realm, reactor, notebook_dir):
        self.router = router
        self.realm = realm
        self.reactor = reactor
        self.directory = NotebookDirectory(notebook_dir)
        self.session = None

    def startService(self):
        super().startService()
        self.session = NotebookSession(types.ComponentConfig(realm=self.realm), self.directory,
                                       run=in_thread_pool(self.reactor))
        attach(self.router, self.session, Principal("notebooks", KERNEL_HOST_ROLE, "local"),
               self.reactor)
