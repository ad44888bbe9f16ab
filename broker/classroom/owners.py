"""Who owns each kernel, learnt from the kernel host's lifecycle events.

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
asked again).
"""

from autobahn.wamp import message
from autobahn.wamp.role import RoleSubscriberFeatures
from twisted.logger import Logger

from broker.kernel import uris


class KernelOwners:
    """kernel id -> owner's authid (None: started by an unidentified caller)."""

    def __init__(self):
        self._owners = {}

    def __len__(self):
        return len(self._owners)

    def known(self, kernel_id):
        return kernel_id in self._owners

    def owner(self, kernel_id):
        return self._owners.get(kernel_id)

    def event(self, event, model):
        """Take one lifecycle event's kernel model into account."""
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            return
        if event in ("stopped", "dead"):
            self._owners.pop(model["id"], None)
        elif model["id"] not in self._owners:
            self._owners[model["id"]] = model.get("owner")


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
