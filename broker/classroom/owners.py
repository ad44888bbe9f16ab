"""Who owns each kernel and whom it is shared with, learnt from the kernel host's lifecycle events.

The kernel host publishes every kernel's model (with its ``owner``: the authid
of the session that started it) on ``webkernel.kernels.events`` when it is
started, re-attached, changes state or stops. :class:`OwnerTracker` is the
channel of an in-process router session subscribed to that topic: the router
hands it each EVENT synchronously, inside the host's PUBLISH, so a kernel's
owner is known before the host's answer to ``webkernel.kernels.start``
reaches the caller. Only the kernel host may publish under ``webkernel.``, so
an owner cannot be forged. A kernel's owner never changes. The entry goes
when the kernel stops or dies (a kernel whose start failed only dies), so the
map holds live kernels only; a dead kernel that is restarted is learnt again
from its next event (between the two its owner's calls are refused, and
asked again). Shares change (event ``shared``): the latest model's ``shared``
is in force, and users who lost their share are reported to ``on_revoked``.
"""

from autobahn.wamp import message
from autobahn.wamp.role import RoleSubscriberFeatures
from twisted.logger import Logger

from broker.kernel import uris


class KernelOwners:
    """kernel id -> its owner's authid (None: an unidentified caller) and whom it is shared with.

    *on_revoked* ``(kernel_id, users)`` is called when users lose their share
    of a kernel (the wiring drops their subscriptions to its topics).
    """

    def __init__(self, on_revoked=None):
        self._owners = {}
        self._shares = {}  # kernel id -> {user: "watch" or "full"}
        self.on_revoked = on_revoked or (lambda kernel_id, users: None)

    def __len__(self):
        return len(self._owners)

    def known(self, kernel_id):
        return kernel_id in self._owners

    def owner(self, kernel_id):
        return self._owners.get(kernel_id)

    def share(self, kernel_id, user):
        """*user*'s share of the kernel: ``"watch"``, ``"full"`` or None."""
        return self._shares.get(kernel_id, {}).get(user)

    def event(self, event, model):
        """Take one lifecycle event's kernel model into account."""
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            return
        kernel_id = model["id"]
        if event in ("stopped", "dead"):
            self._owners.pop(kernel_id, None)
            self._shares.pop(kernel_id, None)
            return
        if kernel_id not in self._owners:
            self._owners[kernel_id] = model.get("owner")
        self._update_shares(kernel_id, model.get("shared"))

    def _update_shares(self, kernel_id, shared):
        shared = {u: a for u, a in (shared or {}).items()
                  if isinstance(u, str) and a in ("watch", "full")} \
            if isinstance(shared, dict) else {}
        before = self._shares.get(kernel_id, {})
        if shared:
            self._shares[kernel_id] = shared
        else:
            self._shares.pop(kernel_id, None)
        revoked = sorted(set(before) - set(shared))
        if revoked:
            self.on_revoked(kernel_id, revoked)


class OwnerTracker:
    """A router channel (``send``/``close``/``peer``) feeding :class:`KernelOwners`.

    The wiring makes a router session on it with a preset principal and calls
    :meth:`open` with that session.
    """

    peer = "local"
    log = Logger()

    def __init__(self, owners, realm):
        self.owners = owners
        self.realm = realm
        self.session = None

    def open(self, session):
        """Join and subscribe to the kernels' lifecycle events."""
        self.session = session
        session.message_received(message.Hello(self.realm, {"subscriber": RoleSubscriberFeatures()}))
        session.message_received(message.Subscribe(1, uris.KERNELS_EVENTS))

    def send(self, msg):
        if type(msg) is message.Event:
            kwargs = msg.kwargs or {}
            self.owners.event(kwargs.get("event"), kwargs.get("kernel"))
        elif type(msg) in (message.Abort, message.Error):
            self.log.error("the kernel owner tracker was refused: {msg}; students cannot "
                           "use their kernels", msg=msg)

    def close(self):
        self.session = None
