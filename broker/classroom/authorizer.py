"""The classroom authorizer: every CALL, REGISTER, PUBLISH and SUBSCRIBE in ``--users`` mode.

Roles (see docs/classroom.md):

* **student**: starts kernels; calls and watches kernels they own; may
  share one (``share(user, access)``, ``unshare(user)``: owner and teachers
  only) with a user for ``watch`` (subscribe, and what an observer may call)
  or ``full`` (everything but sharing); registers and publishes nothing; no
  meta API; lists, opens and saves notebooks (the notebook service, told who
  calls, confines them to their own folder: :mod:`broker.classroom.notebooks`).
* **teacher**: everything a client may do: every kernel, the meta API and
  meta events, the notebooks; registers and publishes outside the
  ``webkernel.`` and ``wamp.`` namespaces.
* **observer**: lists and watches every kernel and may read its output
  history (``outputs``, ``reply``, ``kernel_info``, ``history``); nothing that
  runs code or changes a kernel; lists and reads notebooks; no meta API.
* the service's own sessions (the kernel host, the notebook service) are
  judged by :class:`~broker.auth.DefaultAuthorizer`; the owner tracker only
  subscribes to the lifecycle events.

Prefix and wildcard subscriptions are judged by every URI they could match:
a student's pattern that could reach another kernel's topics, or ``wamp.``,
is refused. A decision that depends on a kernel's owner is cached only once
the owner is known (it never changes); a decision that depends on a share,
or a refusal of a non-owner (a share may come), is never cached. Calls to the kernel API disclose the caller to the kernel host
(it records who started a kernel and who caused each output); calls to the
notebook procedures disclose it to the notebook service (it picks the
caller's folder by it, and refuses a caller it is not told of).
"""

from zope.interface import implementer

from broker.auth import NOTEBOOKS_ROLE, DefaultAuthorizer, IAuthorizer, could_cover, has_prefix
from broker.classroom import roles
from broker.kernel import uris
from broker.notebook import uris as notebook_uris
from broker.teaching import uris as class_uris

#: the kernel procedures an observer may call: reading, never running or changing
OBSERVER_PROCEDURES = frozenset({"outputs", "reply", "kernel_info", "history"})
OBSERVER_NOTEBOOKS = frozenset({notebook_uris.NOTEBOOKS_LIST, notebook_uris.NOTEBOOKS_GET})
#: a student's notebook calls: the notebook service confines them to their own folder
STUDENT_NOTEBOOKS = OBSERVER_NOTEBOOKS | {notebook_uris.NOTEBOOKS_SAVE}
EVERYONE_CALLS = frozenset({uris.KERNELSPECS, uris.KERNELS_LIST})

ALLOW = {"allow": True, "disclose": True, "cache": True}
DENY = {"allow": False, "disclose": False, "cache": True}
#: depends on what can change (a share; an owner not known yet): asked again next time
ALLOW_NOW = {"allow": True, "disclose": True, "cache": False}
DENY_NOW = {"allow": False, "disclose": False, "cache": False}
DENY_UNKNOWN = DENY_NOW
#: what only a kernel's owner (or a teacher) may call
OWNER_PROCEDURES = frozenset({"share", "unshare"})


@implementer(IAuthorizer)
class ClassroomAuthorizer:
    """Decides by role, and for students by kernel ownership (:class:`~broker.classroom.owners.KernelOwners`)."""

    def __init__(self, owners):
        self.owners = owners
        self._service = DefaultAuthorizer()

    def authorize(self, session, uri, action, options):
        match = (options or {}).get("match", "exact")
        role = session.get("authrole")
        if role in (roles.HOST, NOTEBOOKS_ROLE):
            return self._service.authorize(session, uri, action, options)
        if role == roles.TRACKER_ROLE:
            return ALLOW if (action, uri, match) == ("subscribe", uris.KERNELS_EVENTS, "exact") else DENY
        if role == roles.TEACHING:
            return ALLOW if teaching_may(action, uri, match) else DENY
        if role not in (roles.STUDENT, roles.TEACHER, roles.OBSERVER):
            return DENY
        return getattr(self, "_" + action)(session["authid"], role, uri, match)

    # -- per action ------------------------------------------------------------

    @staticmethod
    def _register(authid, role, uri, match):
        reserved = could_cover(uri, match, "webkernel") or could_cover(uri, match, "wamp")
        return ALLOW if role == roles.TEACHER and not reserved else DENY

    _publish = _register

    def _call(self, authid, role, uri, match):
        if has_prefix(uri, "wamp"):
            return ALLOW if role == roles.TEACHER else DENY
        if not has_prefix(uri, "webkernel"):
            return {"allow": True, "disclose": False, "cache": True}
        if uri.startswith(class_uris.CLASS_PREFIX):
            return ALLOW if role in CLASS_CALLERS.get(uri, ()) else DENY
        if role == roles.TEACHER or uri in EVERYONE_CALLS:
            return ALLOW
        if uri == uris.KERNELS_START:
            return ALLOW if role == roles.STUDENT else DENY
        if uri.startswith(uris.KERNEL_PREFIX):
            return self._kernel_call(authid, role, uri)
        return ALLOW if uri in _NOTEBOOKS.get(role, ()) else DENY

    def _kernel_call(self, authid, role, uri):
        kernel_id = uris.kernel_id_of(uri)
        name = uri[len(uris.KERNEL_PREFIX) + len(kernel_id) + 1:]
        if role == roles.OBSERVER:
            return ALLOW if name in OBSERVER_PROCEDURES else DENY
        return self._student(authid, kernel_id, name)

    def _subscribe(self, authid, role, uri, match):
        if role == roles.TEACHER:
            return ALLOW
        if could_cover(uri, match, "wamp"):
            return DENY
        if role == roles.OBSERVER or not could_cover(uri, match, "webkernel"):
            return ALLOW
        if match == "exact" and uri in (uris.KERNELS_EVENTS, class_uris.EVENTS):
            return ALLOW  # published only to those who may see the kernel (or the event)
        kernel_id = confined_to_kernel(uri, match)
        return self._student(authid, kernel_id, None) if kernel_id else DENY

    def _student(self, authid, kernel_id, name):
        """A student's right to call *name* on a kernel (None: to watch it)."""
        if not self.owners.known(kernel_id):
            return DENY_UNKNOWN
        if self.owners.owner(kernel_id) == authid:
            return ALLOW
        share = self.owners.share(kernel_id, authid)
        if share == "full" and name not in OWNER_PROCEDURES:
            return ALLOW_NOW
        if share == "watch" and (name is None or name in OBSERVER_PROCEDURES):
            return ALLOW_NOW
        return DENY_NOW


#: who may call each live classroom procedure
CLASS_CALLERS = {
    **{uri: (roles.STUDENT,) for uri in class_uris.STUDENT_PROCEDURES},
    **{uri: (roles.TEACHER, roles.OBSERVER) for uri in class_uris.WATCHER_PROCEDURES},
    **{uri: (roles.TEACHER,) for uri in class_uris.TEACHER_PROCEDURES},
}
#: what the live classroom session subscribes to
TEACHING_SUBSCRIPTIONS = frozenset({
    (uris.KERNELS_EVENTS, "exact"), (class_uris.ON_JOIN, "exact"),
    (class_uris.ON_LEAVE, "exact"), (class_uris.EXECUTE_INPUTS, "wildcard"),
    (class_uris.ERRORS, "wildcard")})


def teaching_may(action, uri, match):
    """The live classroom session's rights: its procedures and topic, what it hears, what it calls."""
    if action == "register":
        return match == "exact" and uri in CLASS_CALLERS
    if action == "publish":
        return uri == class_uris.EVENTS
    if action == "subscribe":
        return (uri, match) in TEACHING_SUBSCRIPTIONS
    if match != "exact":
        return False
    if uri in (class_uris.SUBSCRIPTION_MATCH, class_uris.SUBSCRIPTION_GET,
               class_uris.COUNT_SUBSCRIBERS, uris.KERNELS_LIST):
        return True
    kernel_id = uris.kernel_id_of(uri)
    name = uri[len(uris.KERNEL_PREFIX) + len(kernel_id) + 1:]
    return bool(kernel_id) and name in class_uris.KERNEL_CALLS


#: the notebook procedures each role may call; ALLOW discloses the caller, which
#: the notebook service needs to pick the caller's folder
_NOTEBOOKS = {roles.STUDENT: STUDENT_NOTEBOOKS, roles.OBSERVER: OBSERVER_NOTEBOOKS}


def confined_to_kernel(uri, match):
    """The kernel id if every URI *uri* under *match* could match is one kernel's, else None.

    ``webkernel.kernel.<id>.iopub`` (exact or prefix), ``webkernel.kernel.<id>``
    (prefix: kernel ids all have the same length, so no other id starts with
    it) and ``webkernel.kernel.<id>..stream`` (wildcard) are confined;
    ``webkernel.kernel.`` (prefix), ``webkernel.kernel..iopub.stream`` or
    ``..<id>.iopub`` (wildcard) are not.
    """
    parts = uri.split(".")
    if len(parts) < 3 or parts[0] != "webkernel" or parts[1] != "kernel" or not parts[2]:
        return None
    if match == "prefix" and len(parts) == 3 and len(parts[2]) != 32:
        return None
    return parts[2]
