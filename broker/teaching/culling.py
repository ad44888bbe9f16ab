"""Idle culling (``--cull-idle SECONDS``): kernels no one runs or watches are shut down.

Every ``min(SECONDS / 2, 30)`` seconds (at least 1) the culler asks the
roster (:class:`~broker.teaching.roster.ClassRoster`) for kernels not busy
whose last cell began, or last busy state came, *SECONDS* or more ago
(a kernel that never ran anything counts from its start). For each it asks
the router's meta API whether anyone but the classroom session is
subscribed to the kernel's output (``wamp.subscription.match``, ``get`` and
``count_subscribers``: an open notebook page, a teacher watching); only a
subscription whose URI names the kernel counts (a prefix or wildcard over
every kernel watches none in particular); if no one is, it shuts the
kernel down and publishes ``{event: "culled", kernel_id, owner,
idle_seconds, reason}`` on ``webkernel.class.events`` to the owner,
teachers and observers. A kernel is culled at most once per check; a
failing check is logged and tried again at the next.
"""

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer, task
from twisted.logger import Logger

from broker.classroom import roles
from broker.kernel import uris as kernel_uris
from broker.teaching import uris

#: the longest time between two checks, in seconds
MAX_INTERVAL = 30.0


def names_kernel(subscription, kernel_id):
    """Whether a subscription (``wamp.subscription.get``'s answer) is to *kernel_id*'s output in particular.

    An exact subscription that matched is; a prefix or wildcard one is if one of
    its URI's components is the kernel's id (``webkernel.kernel.<id>.iopub``), not
    if it covers every kernel (``webkernel.kernel.``, ``webkernel.kernel..iopub.status``).
    """
    uri = (subscription or {}).get("uri")
    if not isinstance(uri, str):
        return False
    return subscription.get("match", "exact") == "exact" or kernel_id in uri.split(".")


def check_interval(seconds):
    return max(1.0, min(seconds / 2.0, MAX_INTERVAL))


class IdleCuller:
    """Shuts down kernels of *session* (a :class:`~broker.teaching.session.ClassSession`) idle for *seconds*."""

    log = Logger()

    def __init__(self, session, clock, seconds):
        self.session, self.clock, self.seconds = session, clock, seconds
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = clock
        self._checking = None

    def start(self):
        self._loop.start(check_interval(self.seconds), now=False)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def check(self):
        """Cull every idle, unwatched kernel (a Deferred that fires when the check is done)."""
        if self._checking is not None or not self.session.is_attached():
            return self._checking
        idle = self.session.roster.idle_since(self.clock.seconds(), self.seconds)
        self._checking = defer.gatherResults([self._maybe_cull(k) for k in idle])
        self._checking.addBoth(self._checked)
        return self._checking

    def _checked(self, result):
        self._checking = None

    @defer.inlineCallbacks
    def _maybe_cull(self, kernel_id):
        try:
            if (yield self.watchers(kernel_id)):
                return
            owner = self.session.roster.owner(kernel_id)
            yield self.session.call(kernel_uris.kernel_procedure(kernel_id, "shutdown"))
        except ApplicationError as e:
            self.log.warn("could not cull kernel {kernel_id}: {error}", kernel_id=kernel_id,
                          error=e)
            return
        self.log.info("culled kernel {kernel_id} of {owner}: idle for {seconds} s",
                      kernel_id=kernel_id, owner=owner, seconds=self.seconds)
        self._tell(kernel_id, owner)

    @defer.inlineCallbacks
    def watchers(self, kernel_id):
        """How many sessions other than the classroom's are subscribed to the kernel's output by a URI naming it."""
        topic = kernel_uris.kernel_topic(kernel_id, "iopub.status")
        ids = (yield self.session.call(uris.SUBSCRIPTION_MATCH, topic)) or []
        count = 0
        for subscription_id in ids:
            if subscription_id in self.session.own_subscriptions:
                continue
            subscription = yield self.session.call(uris.SUBSCRIPTION_GET, subscription_id)
            if names_kernel(subscription, kernel_id):
                count += yield self.session.call(uris.COUNT_SUBSCRIBERS, subscription_id)
        return count

    def _tell(self, kernel_id, owner):
        event = dict(event="culled", kernel_id=kernel_id, owner=owner, idle_seconds=self.seconds,
                     reason=f"no cell ran and no one watched it for {self.seconds:g} s "
                            f"(--cull-idle): a new kernel starts on the next run")
        watchers = [roles.TEACHER, roles.OBSERVER]
        if isinstance(owner, str):
            self.session.publish(uris.EVENTS, options=PublishOptions(
                acknowledge=False, eligible_authid=[owner]), **event)
            self.session.publish(uris.EVENTS, options=PublishOptions(
                acknowledge=False, eligible_authrole=watchers, exclude_authid=[owner]), **event)
        else:
            self.session.publish(uris.EVENTS, options=PublishOptions(
                acknowledge=False, eligible_authrole=watchers), **event)
