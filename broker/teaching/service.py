"""The live classroom as a twistd service: attached to the embedded router on start (``--users`` mode).

It joins with its own role, ``webkernel_teaching``, whose rights the classroom
authorizer gives (docs/classroom.md): register and publish ``webkernel.class.*``,
hear kernel events, two outputs of every kernel and sessions joining and
leaving, run and shut down kernels.
"""

from autobahn.wamp import types
from twisted.application import service

from broker.auth import TEACHING_ROLE, Principal
from broker.teaching.culling import IdleCuller
from broker.teaching.session import ClassSession

TEACHING_AUTHID = "webkernel_teaching"


class ClassService(service.Service):
    """Serves ``webkernel.class.*``; with *cull_idle* (seconds) culls idle kernels too.

    *attach* is ``attach(app_session, principal)``, handed over by the wiring;
    *users* answers ``{name: role}`` of the users file.
    """

    def __init__(self, attach, realm, clock, users, cull_idle=None):
        self.attach, self.realm, self.clock = attach, realm, clock
        self.users, self.cull_idle = users, cull_idle
        self.session = self.culler = None

    def startService(self):
        super().startService()
        self.session = ClassSession(types.ComponentConfig(realm=self.realm), self.clock,
                                    self.users, self.cull_idle)
        if self.cull_idle:
            self.culler = IdleCuller(self.session, self.clock, self.cull_idle)
            self.session.joined.addCallback(lambda _: self.culler.start())
        self.attach(self.session, Principal(TEACHING_AUTHID, TEACHING_ROLE, "local"))

    def stopService(self):
        if self.culler is not None:
            self.culler.stop()
        return super().stopService()
