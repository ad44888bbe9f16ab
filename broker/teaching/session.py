"""The live classroom's WAMP session: ``webkernel.class.*`` on the router (docs/classroom.md).

An ordinary Autobahn session attached in-process (role ``webkernel_teaching``).
It listens to what the service publishes anyway: the router's meta events
(who signs in and out), ``webkernel.kernels.events`` (kernels and their
state) and two outputs of every kernel (``execute_input``: the cell run,
``error``), by wildcard subscription; it keeps them in a
:class:`~broker.teaching.roster.ClassRoster` and publishes each changed
user's tile on ``webkernel.class.events`` to teachers and observers only
(WAMP eligibility, decided by the router at publication).

Procedures (who may call them is the classroom authorizer's decision):
``help(message)`` (students), ``help_clear(user)``, ``broadcast(code,
group)`` (teachers), ``roster()`` (teachers and observers).
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import defer
from twisted.logger import Logger

from broker.classroom import roles
from broker.kernel import arguments
from broker.kernel import uris as kernel_uris
from broker.service_session import QuietRefusals
from broker.teaching import handout, uris
from broker.teaching.roster import ClassRoster

#: the roster's watchers: teachers and observers
WATCHERS = PublishOptions(acknowledge=False, eligible_authrole=[roles.TEACHER, roles.OBSERVER])
#: most users a broadcast's group may name
MAX_GROUP = 1000
#: seconds between two tiles of one user on webkernel.class.events: changes within
#: them (a student running many cells a second, asking for help in a loop) are
#: folded into one tile, the newest, sent when they end
TILE_INTERVAL = 0.25
#: seconds a broadcast waits for each kernel; one still running then is reported "running"
#: (and left to run: cancelling the call would interrupt the student's kernel)
BROADCAST_WAIT = 60.0


class ClassSession(QuietRefusals, ApplicationSession):
    """Serves the live classroom from a :class:`ClassRoster` kept up to date by subscriptions.

    *clock* gives the time; *users* answers ``{name: role}`` of the users file.
    """

    log = Logger()

    def __init__(self, config, clock, users=dict, cull_idle=None, homes=None, run=None,
                 tickets=None):
        super().__init__(config)
        #: with per-user notebook folders: a handout.HomeFolders, and run(f, *args) off the reactor
        self.homes, self.run, self.tickets = homes, run, tickets
        self.clock = clock
        self.roster = ClassRoster(users)
        self.cull_idle = cull_idle
        self.joined = defer.Deferred()
        self.own_subscriptions = set()
        self.tiles = Throttle(clock, TILE_INTERVAL, self._publish_tile)

    @defer.inlineCallbacks
    def onJoin(self, details):
        with_details = SubscribeOptions(details_arg="details")
        wildcard = SubscribeOptions(match="wildcard", details_arg="details")
        for handler, topic, options in ((self.on_kernel_event, kernel_uris.KERNELS_EVENTS, None),
                                        (self.on_session_join, uris.ON_JOIN, None),
                                        (self.on_session_leave, uris.ON_LEAVE, None),
                                        (self.on_execute_input, uris.EXECUTE_INPUTS, wildcard),
                                        (self.on_error, uris.ERRORS, wildcard)):
            subscription = yield self.subscribe(handler, topic, options=options or with_details)
            self.own_subscriptions.add(subscription.id)
        procedure = RegisterOptions(details_arg="details")
        for function, uri in ((self.help, uris.HELP), (self.help_clear, uris.HELP_CLEAR),
                              (self.roster_of_class, uris.ROSTER),
                              (self.broadcast, uris.BROADCAST)):
            yield self.register(arguments.checked(function, uri), uri, options=procedure)
        if self.homes is not None:
            for function, uri in ((self.hand_out, uris.HAND_OUT), (self.collect, uris.COLLECT)):
                yield self.register(arguments.checked(function, uri), uri, options=procedure)
        self.log.info("live classroom joined realm {realm}", realm=details.realm)
        self.joined.callback(self)

    def now(self):
        return self.clock.seconds()

    # -- what the roster learns ---------------------------------------------------

    def on_kernel_event(self, event=None, kernel=None, details=None):
        self.changed(self.roster.kernel_event(event, kernel, self.now()))

    def on_session_join(self, session_details, details=None):
        if isinstance(session_details, dict):
            self.changed(self.roster.joined(session_details.get("session"),
                                            session_details.get("authid"),
                                            session_details.get("authrole")))

    def on_session_leave(self, session_id, authid=None, authrole=None, details=None):
        self.changed(self.roster.left(session_id))

    def on_execute_input(self, *args, details=None, **output):
        content = output.get("content") or {}
        self.changed(self.roster.execute_input(kernel_uris.kernel_id_of(details.topic or ""),
                                               content.get("code"), self.now()))

    def on_error(self, *args, details=None, **output):
        self.changed(self.roster.error(kernel_uris.kernel_id_of(details.topic or ""),
                                       output.get("content")))

    def changed(self, users):
        """Publish the tile of each user whose tile changed (at most one per TILE_INTERVAL each)."""
        for user in users:
            if isinstance(user, str):
                self.tiles(user)

    def _publish_tile(self, user):
        if self.is_attached():
            self.publish(uris.EVENTS, event="user", user=self.roster.tile(user),
                         server_time=self.now(), options=WATCHERS)

    # -- procedures ---------------------------------------------------------------

    def help(self, message=None, details=None):
        """A student asks for help; teachers and observers see it at once."""
        arguments.text("message", message, optional=True)
        self.changed(self.roster.ask_help(details.caller_authid, message, self.now()))
        return True

    def help_clear(self, user, details=None):
        """A teacher clears *user*'s help request: True if there was one."""
        arguments.text("user", user)
        users = self.roster.clear_help(user)
        self.changed(users)
        return bool(users)

    def roster_of_class(self, details=None):
        return {"server_time": self.now(), "cull_idle": self.cull_idle,
                "users": self.roster.snapshot()}

    def broadcast(self, code, group=None, details=None):
        """Run *code* in every kernel of every student (of *group*): per student, per kernel, how it went."""
        arguments.text("code", code)
        students = self._group(group)
        teacher = {"authid": details.caller_authid, "authrole": details.caller_authrole}
        calls = {(user, k["id"]): self._run(k["id"], code, teacher)
                 for user in students for k in self.roster.kernels_of(user)
                 if k["state"] in ("idle", "busy")}
        d = defer.gatherResults(list(calls.values()))
        return d.addCallback(lambda results: _per_student(students, list(calls), results))

    def hand_out(self, path, group=None, details=None):
        """Copy the caller's notebook *path* into each student's folder (of *group*); tell each student."""
        students = self._group(group)
        handout.stem_of(path)
        d = self.homes.ensure(students)
        d.addCallback(lambda _: self.run(handout.hand_out, self.homes.folder_of,
                                         details.caller_authid, path, students))
        return d.addCallback(self._handed_out, details.caller_authid)

    def _handed_out(self, answer, teacher):
        for student, given in answer.items():
            if given["path"] and given["status"] != "unchanged":
                self.publish(uris.EVENTS, event="handed_out", path=given["path"], by=teacher,
                             options=PublishOptions(acknowledge=False, eligible_authid=[student]))
        return answer

    def collect(self, name, group=None, details=None):
        """Gather each student's *name* into the caller's ``collected/<stem>/``."""
        teacher = details.caller_authid
        d = self.run(handout.collect, self.homes.folder_of, teacher, name, self._group(group))
        return d.addCallback(self._with_download, teacher, name)

    def _with_download(self, answer, teacher, name):
        """The answer, with ``download``: a single-use URL path of the zip (if tickets are served)."""
        if self.tickets is not None:
            token = self.tickets.issue((self.homes.folder_of(teacher), answer["path"],
                                        handout.stem_of(name)))
            answer["download"] = f"class-zip/{token}.zip"
        return answer

    def _group(self, group):
        students = self.roster.students()
        if group is None:
            return students
        if not isinstance(group, list) or len(group) > MAX_GROUP:
            raise arguments.refuse(f"group must be a list of at most {MAX_GROUP} user names")
        for user in group:
            arguments.text("a user of group", user)
        return [user for user in students if user in set(group)]

    def _run(self, kernel_id, code, teacher):
        d = self.call(kernel_uris.kernel_procedure(kernel_id, "execute"), code,
                      on_behalf_of=teacher)
        return within(d.addCallbacks(_ran, _failed), self.clock, BROADCAST_WAIT,
                      {"status": "running"})


class Throttle:
    """*send(key)* at most once per *interval* seconds per key, never leaving the last change unsent.

    The first change of a key is sent at once; more within *interval* of the last
    send are folded into one send when the interval ends (*send* reads the state
    then, so it is the newest). Memory: one entry per key (here: per user of the roster).
    """

    def __init__(self, clock, interval, send):
        self.clock, self.interval, self.send = clock, interval, send
        self._sent = {}     # key -> when it was last sent
        self._waiting = {}  # key -> the delayed call that will send it

    def __call__(self, key):
        if key in self._waiting:
            return
        now = self.clock.seconds()
        last = self._sent.get(key)
        if last is None or now - last >= self.interval:
            self._send(key)
        else:
            self._waiting[key] = self.clock.callLater(last + self.interval - now, self._due, key)

    def _due(self, key):
        del self._waiting[key]
        self._send(key)

    def _send(self, key):
        self._sent[key] = self.clock.seconds()
        self.send(key)


def within(d, clock, seconds, otherwise):
    """A Deferred of *d*'s result, or of *otherwise* after *seconds* (on *clock*) if *d* has not fired; *d* is not cancelled."""
    answer = defer.Deferred()
    timer = clock.callLater(seconds, lambda: answer.called or answer.callback(otherwise))

    def done(result):
        if timer.active():
            timer.cancel()
        if not answer.called:
            answer.callback(result)
    d.addBoth(done)
    return answer


def _ran(result):
    answer = getattr(result, "kwresults", None) or {}
    reply = answer.get("reply") or {}
    ran = {"status": answer.get("status", "ok"), "execution_count": answer.get("execution_count")}
    if ran["status"] != "ok":
        ran.update(ename=reply.get("ename"), evalue=reply.get("evalue"))
    return ran


def _failed(failure):
    failure.trap(ApplicationError)
    error = failure.value
    return {"status": "error", "error": error.error, "ename": error.kwargs.get("ename"),
            "evalue": error.kwargs.get("evalue") or (error.args[0] if error.args else None)}


def _per_student(students, keys, results):
    """``{user: {"status": ok / error / running / no_kernel, "kernels": {kernel id: result}}}``."""
    answer = {user: {"status": "no_kernel", "kernels": {}} for user in students}
    for (user, kernel_id), result in zip(keys, results):
        answer[user]["kernels"][kernel_id] = result
    for entry in answer.values():
        statuses = {r["status"] for r in entry["kernels"].values()}
        if statuses:
            entry["status"] = ("ok" if statuses == {"ok"} else
                               "error" if statuses - {"ok", "running"} else "running")
    return answer
