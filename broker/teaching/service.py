"""The live classroom as a twistd service: attached to the embedded router on start (``--users`` mode).

It joins with its own role, ``webkernel_teaching``, whose rights the classroom
authorizer gives (docs/classroom.md): register and publish ``webkernel.class.*``,
hear kernel events, two outputs of every kernel and sessions joining and
leaving, run and shut down kernels.
"""

from autobahn.wamp import types
from twisted.application import service
from twisted.internet import threads

from broker.auth import TEACHING_ROLE, Principal
from broker.teaching.culling import IdleCuller
from broker.teaching.download import CollectedZip, DownloadTickets
from broker.teaching.handout import HomeFolders
from broker.teaching.session import ClassSession

TEACHING_AUTHID = "webkernel_teaching"


class ClassService(service.Service):
    """Serves ``webkernel.class.*``; with *cull_idle* (seconds) culls idle kernels too.

    *attach* is ``attach(app_session, principal)``, handed over by the wiring;
    *users* answers ``{name: role}`` of the users file; with *folders* (the
    users' notebook folders, :class:`~broker.classroom.notebooks.UserFolders`)
    hand-out and collect are served too, their file work in the reactor's
    thread pool.
    """

    def __init__(self, attach, realm, clock, users, cull_idle=None, folders=None):
        self.attach, self.realm, self.clock = attach, realm, clock
        self.users, self.cull_idle, self.folders = users, cull_idle, folders
        self.session = self.culler = None
        self.tickets = DownloadTickets(clock) if folders is not None else None

    def download_resource(self):
        """``/class-zip/``: collected notebooks as a zip, by single-use ticket (None without folders)."""
        return CollectedZip(self.tickets, self._in_thread) if self.tickets is not None else None

    def startService(self):
        super().startService()
        homes = HomeFolders(self.folders) if self.folders is not None else None
        self.session = ClassSession(types.ComponentConfig(realm=self.realm), self.clock,
                                    self.users, self.cull_idle, homes=homes, run=self._in_thread,
                                    tickets=self.tickets)
        if self.cull_idle:
            self.culler = IdleCuller(self.session, self.clock, self.cull_idle)
            self.session.joined.addCallback(lambda _: self.culler.start())
        self.attach(self.session, Principal(TEACHING_AUTHID, TEACHING_ROLE, "local"))

    def _in_thread(self, function, *args):
        return threads.deferToThreadPool(self.clock, self.clock.getThreadPool(), function, *args)

    def stopService(self):
        if self.culler is not None:
            self.culler.stop()
        return super().stopService()
