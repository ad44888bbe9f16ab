"""The notebook session as a twistd service: attached to the embedded router, or joined to Crossbar.io.

:class:`NotebookService` attaches in-process to webkernel's own router with
its own role, ``webkernel_notebooks``, which may register the notebook
procedures and nothing else (:class:`broker.auth.DefaultAuthorizer`).
:class:`RemoteNotebookService` (``--router URL --notebooks-only``) joins an
external router (Crossbar.io) as ``webkernel_notebooks`` with a ticket, and
stays joined through router restarts (:mod:`broker.realm_member`); several
of them may serve one realm (a shared registration, :data:`SHARED_INVOKE`).
Either's file work runs in a bounded thread pool of its own
(:mod:`broker.notebook.workers`), started and stopped with the service.
"""

from autobahn.wamp import types
from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from broker.auth import NOTEBOOKS_AUTHID, NOTEBOOKS_ROLE, Principal
from broker.notebook.session import NotebookSession
from broker.notebook.store import DEFAULT_MAX_NOTEBOOK_SIZE, NotebookDirectory
from broker.notebook.workers import DEFAULT_LIMIT, DEFAULT_THREADS, BoundedWorkers, notebook_pool
from broker.realm_member import (
    DEFAULT_ROUTER_PING,
    DEFAULT_ROUTER_PING_TIMEOUT,
    joining_component,
    router_transport,
)

#: how the router picks one of several notebook services for a call: each holds the
#: same folders (a shared directory), so any will do; round-robin spreads the file work
SHARED_INVOKE = "roundrobin"


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
        self.session = self._make_session(types.ComponentConfig(realm=self.realm))
        self.attach(self.session, Principal("notebooks", NOTEBOOKS_ROLE, "local"))

    def _make_session(self, config, invoke=None):
        """A NotebookSession on this service's folders and workers (one pool and queue for all)."""
        return NotebookSession(config, self.directory, run=self.workers.run,
                               folders=self.folders, invoke=invoke)

    def stopService(self):
        """Stop the pool: work already running finishes (a save is never cut off half written)."""
        super().stopService()
        self.pool.stop()


class RemoteNotebookService(NotebookService):
    """Serves the notebook procedures on an external router's realm (``--router … --notebooks-only``).

    It joins *url* as ``webkernel_notebooks`` with the ticket *token*, and
    reconnects, with the kernel host's back-off and pings
    (:func:`broker.realm_member.router_transport`), when the router goes
    away: each new session registers the procedures again. Its registrations
    are shared (:data:`SHARED_INVOKE`), so more notebook services over the same
    folders may join the realm too. The limits are the local service's: one
    thread pool and one request queue for every session it makes.
    """

    log = Logger()

    def __init__(self, url, realm, token, reactor, notebook_dir, ping_interval=DEFAULT_ROUTER_PING,
                 ping_timeout=DEFAULT_ROUTER_PING_TIMEOUT, **options):
        super().__init__(None, realm, reactor, notebook_dir, **options)
        self.url = url
        self.token = token
        self.transport = router_transport(url, ping_interval, ping_timeout)
        self.component = None

    def startService(self):
        service.Service.startService(self)
        self.pool.start()
        self.component = joining_component(self.transport, self.realm, NOTEBOOKS_AUTHID,
                                           self.token, self._joining)
        self.component.start(self.reactor)
        self.log.info("notebook service joining {url} (realm {realm})", url=self.url,
                      realm=self.realm)

    def _joining(self, config):
        self.session = self._make_session(config, invoke=SHARED_INVOKE)
        return self.session

    @defer.inlineCallbacks
    def stopService(self):
        if self.component is not None:
            yield self.component.stop()
        yield super().stopService()
