"""What the teacher's page shows of each user, learnt from events the service publishes anyway.

:class:`ClassRoster` owns three maps: the router's sessions (from the meta
events ``wamp.session.on_join`` / ``on_leave``), the live kernels (from
``webkernel.kernels.events`` and the ``execute_input`` / ``error`` outputs of
every kernel) and the open help requests. Time is passed in as data
(``now``: seconds since the epoch). Everything kept is bounded: sessions
and kernels by the service's own limits (connections, ``--max-kernels``),
users by the users file, and each text (a cell's code, an error, a help
message) is cut to :data:`MAX_TEXT` characters.

Each method that changes something returns the users whose tile changed,
for the session to publish (:meth:`ClassRoster.tile`).
"""

from broker.classroom import roles

#: longest cell code, error value or help message kept (characters; longer ones are cut, marked "…")
MAX_TEXT = 1000
#: the roles the roster shows
PEOPLE = (roles.STUDENT, roles.TEACHER, roles.OBSERVER)
#: the kernel event after which the kernel is gone (a dead one stays, shown dead, until stopped)
GONE = ("stopped",)
#: dead kernels kept per user (the oldest go first: a kernel that failed to start is never stopped)
MAX_DEAD_PER_USER = 2


def cut(text, limit=MAX_TEXT):
    """*text* at most *limit* characters long (a cut one ends with "…")."""
    text = text if isinstance(text, str) else ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


class ClassRoster:
    """Per user: signed in or not, kernels (state, busy since, last cell, last error), help request.

    *users* is a callable answering ``{name: role}`` for the users file's users.
    """

    def __init__(self, users=dict):
        self.users = users
        self._sessions = {}  # session id -> (authid, authrole)
        self._kernels = {}   # kernel id -> tile of the kernel (a dict, see _kernel_tile)
        self._help = {}      # user -> {"message", "at"}

    # -- sessions ---------------------------------------------------------------

    def joined(self, session_id, authid, authrole):
        if authrole not in PEOPLE or not isinstance(authid, str):
            return []
        self._sessions[session_id] = (authid, authrole)
        return [authid]

    def left(self, session_id):
        who = self._sessions.pop(session_id, None)
        return [who[0]] if who else []

    def signed_in(self, user):
        return sum(1 for authid, _ in self._sessions.values() if authid == user)

    # -- kernels ----------------------------------------------------------------

    def kernel_event(self, event, model, now):
        """A lifecycle event of ``webkernel.kernels.events``."""
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            return []
        kernel_id, owner = model["id"], model.get("owner")
        if event in GONE:
            gone = self._kernels.pop(kernel_id, None)
            return [gone["owner"]] if gone else []
        tile = self._kernels.get(kernel_id)
        if tile is None:
            tile = self._kernels[kernel_id] = _kernel_tile(kernel_id, owner, now)
        state = "dead" if event == "dead" else model.get("execution_state")
        tile["reason"] = cut(model.get("reason"), 200) if state == "dead" else None
        if state == "busy" and tile["state"] != "busy":
            tile["busy_since"] = tile["active_at"] = now
        elif state != "busy":
            tile["busy_since"] = None
        tile["state"] = state
        if state == "dead":
            self._forget_old_dead(tile["owner"])
        return [tile["owner"]]

    def _forget_old_dead(self, owner):
        dead = [k for k in self._kernels.values() if k["owner"] == owner and k["state"] == "dead"]
        for kernel in sorted(dead, key=lambda k: k["active_at"])[:-MAX_DEAD_PER_USER]:
            del self._kernels[kernel["id"]]

    def execute_input(self, kernel_id, code, now):
        """A kernel began running a cell: it is the last cell, and its error is not known yet."""
        tile = self._kernels.get(kernel_id)
        if tile is None:
            return []
        tile.update(last_cell=cut(code), last_cell_at=now, last_error=None, active_at=now)
        return [tile["owner"]]

    def error(self, kernel_id, content):
        """The last cell ended in an error."""
        tile = self._kernels.get(kernel_id)
        if tile is None or not isinstance(content, dict):
            return []
        tile["last_error"] = {"ename": cut(content.get("ename"), 200),
                              "evalue": cut(content.get("evalue"))}
        return [tile["owner"]]

    def kernels_of(self, user):
        return [dict(k) for k in self._kernels.values() if k["owner"] == user]

    def idle_since(self, now, seconds):
        """Ids of kernels idle (not busy, starting or dead), with no cell begun or busy state for *seconds* before *now*."""
        return [k["id"] for k in self._kernels.values()
                if k["state"] == "idle" and now - k["active_at"] >= seconds]

    def owner(self, kernel_id):
        tile = self._kernels.get(kernel_id)
        return tile["owner"] if tile else None

    # -- help -------------------------------------------------------------------

    def ask_help(self, user, message, now):
        self._help[user] = {"message": cut(message or ""), "at": now}
        return [user]

    def clear_help(self, user):
        return [user] if self._help.pop(user, None) is not None else []

    # -- what the page gets -----------------------------------------------------

    def role(self, user):
        role = self.users().get(user)
        if role is None:
            role = next((r for a, r in self._sessions.values() if a == user), None)
        return role

    def tile(self, user):
        """Everything the teacher's page shows of *user*."""
        return {"user": user, "role": self.role(user), "signed_in": self.signed_in(user),
                "kernels": self.kernels_of(user), "help": self._help.get(user)}

    def everyone(self):
        """Every user: of the users file, signed in, or owning a kernel."""
        names = set(self.users()) | {a for a, _ in self._sessions.values()}
        names |= {k["owner"] for k in self._kernels.values() if isinstance(k["owner"], str)}
        return sorted(names)

    def snapshot(self):
        return [self.tile(user) for user in self.everyone()]

    def students(self):
        return [u for u in self.everyone() if self.role(u) == roles.STUDENT]


def _kernel_tile(kernel_id, owner, now):
    return {"id": kernel_id, "owner": owner, "state": "starting", "reason": None, "busy_since": None,
            "last_cell": None, "last_cell_at": None, "last_error": None, "active_at": now}
