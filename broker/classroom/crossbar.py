"""The classroom rules as Crossbar.io's dynamic authorizer (``--crossbar-authorizer``).

A WAMP session joined to Crossbar.io as the classroom tracker
(``webkernel_classroom``) that registers ``webkernel.authorize``, the
procedure a Crossbar.io role names as its ``authorizer``. Crossbar.io calls
it with ``(session, uri, action, options)`` and reads ``{allow, disclose,
cache}``. The decisions are :class:`~broker.classroom.authorizer.ClassroomAuthorizer`'s,
with the kernel owners learnt from ``webkernel.kernels.events`` (and, on
joining, from ``webkernel.kernels.list``).

Crossbar.io caches a decision under (realm, authrole, uri, action): not
under the user, nor under the match policy. One student's right to their own
kernel would, cached, be every student's; an observer's exact subscription
to ``w`` would, cached, allow a prefix subscription to ``w`` (every
``wamp.`` meta event). So a decision is cacheable here only if the classroom
rules cache it and give the same answer to anyone else of the role and for
every match policy (:func:`crossbar_decision`); a student's heartbeat call
or notebook listing is then cached, their own kernel's procedures never.

Given the users file (``--users``), the same session also registers
``webkernel.authenticate``, Crossbar.io's dynamic ticket authenticator
(:mod:`broker.users.crossbar`), so users sign in to Crossbar.io with the
users file and get their role from it; users removed from the file, or whose
password or role changed, are signed out of Crossbar.io (``sign_out``).
"""

from autobahn.twisted.wamp import Session
from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from broker.classroom import roles
from broker.classroom.authorizer import ClassroomAuthorizer
from broker.classroom.owners import KernelOwners
from broker.kernel import uris
from broker.users.crossbar import AUTHENTICATE, crossbar_authenticate, sign_out

AUTHORIZE = "webkernel.authorize"


#: an authid no user has (names in the users file are never empty)
NOBODY = ""
MATCHES = ("exact", "prefix", "wildcard")


def crossbar_decision(rules, session, uri, action, options=None):
    """*rules*' decision as Crossbar.io reads it: cacheable only if it holds for the whole role and any match."""
    options = options or {}
    decision = rules.authorize(session, uri, action, options)
    answer = _answer(decision)
    anyone = {**session, "authid": NOBODY}
    answer["cache"] = bool(decision.get("cache")) and all(
        _answer(rules.authorize(anyone, uri, action, {**options, "match": match})) == answer
        for match in MATCHES)
    return answer


def _answer(decision):
    return {"allow": bool(decision["allow"]), "disclose": bool(decision.get("disclose"))}


class CrossbarAuthorizer(Session):
    """Registers ``webkernel.authorize``; follows the kernels' owners."""

    log = Logger()

    #: the users file (a UserDirectory), or None: then no authenticator is registered
    directory = None
    #: told when this session has joined (``joined(session)``) and left (``left(session)``)
    service = None

    def __init__(self, config=None):
        super().__init__(config)
        self.owners = KernelOwners()
        self.rules = ClassroomAuthorizer(self.owners)

    @defer.inlineCallbacks
    def onJoin(self, details):
        yield self.subscribe(lambda event, kernel: self.owners.event(event, kernel),
                             uris.KERNELS_EVENTS)
        yield self.register(self.authorize, AUTHORIZE)
        if self.directory is not None:
            yield self.register(self.authenticate, AUTHENTICATE)
            self.log.info("users authenticator {uri} registered", uri=AUTHENTICATE)
        try:
            for model in (yield self.call(uris.KERNELS_LIST)):
                self.owners.event("started", model)
        except Exception as e:  # no host yet: the events will tell
            self.log.info("no kernel list yet ({why})", why=e)
        self.log.info("classroom authorizer {uri} registered on realm {realm}",
                      uri=AUTHORIZE, realm=details.realm)
        if self.service is not None:
            self.service.joined(self)

    def onLeave(self, details):
        if self.service is not None:
            self.service.left(self)
        return super().onLeave(details)

    def authorize(self, session, uri, action, options=None):
        return crossbar_decision(self.rules, session, uri, action, options)

    def authenticate(self, realm, authid, details=None):
        return crossbar_authenticate(self.directory, realm, authid, details)


class CrossbarAuthorizerService(service.Service):
    """Keeps a :class:`CrossbarAuthorizer` joined to *url* (ticket ``webkernel_classroom``).

    With *directory* (the users file) it is the dynamic authenticator as well.
    """

    log = Logger()

    def __init__(self, url, realm, token, reactor, directory=None):
        self.url, self.realm, self.token, self.reactor = url, realm, token, reactor
        self.directory = directory
        self.component = None
        self.session = None      # the joined CrossbarAuthorizer, or None
        self.to_sign_out = set()  # users to sign out once joined (names of the users file)

    def startService(self):
        super().startService()
        from autobahn.twisted.component import Component
        self.component = Component(
            transports=[{"url": self.url, "max_retries": -1}], realm=self.realm,
            authentication={"ticket": {"authid": roles.TRACKER_AUTHID, "ticket": self.token}},
            session_factory=self._session)
        if self.directory is not None:
            self.directory.start()
        self.component.start(self.reactor)
        self.log.info("classroom authorizer joining {url} (realm {realm})", url=self.url,
                      realm=self.realm)

    def _session(self, config):
        session = CrossbarAuthorizer(config)
        session.directory = self.directory
        session.service = self
        return session

    def joined(self, session):
        self.session = session
        self._sign_out_now()

    def left(self, session):
        if self.session is session:
            self.session = None

    def sign_out(self, names):
        """Sign *names* out of Crossbar.io: now if joined, else as soon as the session joins."""
        self.to_sign_out.update(names)
        self._sign_out_now()

    def _sign_out_now(self):
        if self.session is None or not self.to_sign_out:
            return
        names, self.to_sign_out = sorted(self.to_sign_out), set()
        sign_out(self.session, names).addErrback(self._sign_out_failed, names)

    def _sign_out_failed(self, failure, names):
        """The session went away mid-way: sign them out once it has joined again."""
        self.log.warn("signing {names} out of Crossbar.io failed ({why}); again on rejoining",
                      names=", ".join(names), why=failure.getErrorMessage())
        self.to_sign_out.update(names)

    def stopService(self):
        super().stopService()
        if self.directory is not None:
            self.directory.stop()
        if self.component is not None:
            return self.component.stop()
