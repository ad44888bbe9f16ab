"""The kernel host: a WAMP session that owns kernels and speaks for them.

It registers ``webkernel.kernelspecs``, ``webkernel.kernels.start`` and
``webkernel.kernels.list``, and per kernel the procedures of
``docs/kernels.md`` under ``webkernel.kernel.<id>.``; it publishes each
kernel's output on ``webkernel.kernel.<id>.iopub.<msg_type>`` and
``.stdin``, and lifecycle events on ``webkernel.kernels.events``. A prefix
registration on ``webkernel.kernel.`` answers calls for unknown kernels with
``webkernel.error.no_such_kernel``.

It is an ordinary Autobahn session (``Session``: an ``ApplicationSession`` that
Autobahn's ``Component`` can run): attached in-process to the embedded router,
or joined to an external router over WebSocket.
"""

import uuid
from datetime import datetime, timezone

from autobahn.twisted.wamp import Session
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, PublishOptions, RegisterOptions
from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel import procedures
from broker.kernel import uris
from broker.kernel.errors import NoSuchKernelSpec
from broker.kernel.history import OutputHistory
from broker.kernel.session import KernelConversation
from broker.kernel.supervisor import KernelStartFailed, KernelSupervisor


class ManagedKernel:
    """A kernel as the host tracks it: model fields, supervisor, conversation."""

    def __init__(self, kernel_id, name, owner, created, conversation, supervisor):
        self.id, self.name, self.owner, self.created = kernel_id, name, owner, created
        self.last_activity = created
        self.conversation = conversation
        self.supervisor = supervisor
        self.registrations = []

    def model(self):
        state = self.supervisor.state
        if state not in ("starting", "restarting", "dead"):
            state = self.conversation.execution_state
        return {
            "id": self.id, "name": self.name, "owner": self.owner,
            "execution_state": state, "last_activity": self.last_activity,
            "created": self.created,
            "reason": self.supervisor.reason if state == "dead" else None,
        }


class KernelHost(Session):
    """Owns kernels; registers their procedures; publishes their output."""

    log = Logger()

    def __init__(self, config, launcher, channels_factory, clock, max_kernels=20,
                 ready_timeout=60.0, history_messages=None, history_bytes=None):
        super().__init__(config)
        self.launcher = launcher
        self.channels_factory = channels_factory
        self.clock = clock
        self.max_kernels = max_kernels
        self.ready_timeout = ready_timeout
        self.history_limits = {k: v for k, v in
                               (("max_messages", history_messages), ("max_bytes", history_bytes))
                               if v is not None}
        self.kernels = {}
        self.joined = defer.Deferred()

    def onUserError(self, fail, msg):
        """Errors answered to callers on purpose are not the host's problem: log quietly."""
        if isinstance(fail.value, ApplicationError):
            self.log.debug("answered {error}: {message}", error=fail.value.error, message=msg)
        else:
            super().onUserError(fail, msg)

    def now(self):
        stamp = datetime.fromtimestamp(self.clock.seconds(), timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    # -- joining ----------------------------------------------------------------

    @defer.inlineCallbacks
    def onJoin(self, details):
        # shared (round robin), so several hosts can join one router (scale-out)
        shared = RegisterOptions(invoke="roundrobin")
        with_details = RegisterOptions(details_arg="details", invoke="roundrobin")
        yield self.register(self.kernelspecs, uris.KERNELSPECS, options=shared)
        yield self.register(self.start_kernel, uris.KERNELS_START, options=with_details)
        yield self.register(self.list_kernels, uris.KERNELS_LIST, options=shared)
        yield self.register(self._unknown_kernel, uris.KERNEL_PREFIX, options=RegisterOptions(
            match="prefix", details_arg="details", invoke="roundrobin"))
        self.log.info("kernel host joined realm {realm}", realm=details.realm)
        if not self.joined.called:
            self.joined.callback(self)

    def _unknown_kernel(self, *args, details=None, **kwargs):
        kernel_id = uris.kernel_id_of(details.procedure or "")
        kernel = self.kernels.get(kernel_id)
        if kernel is not None and not kernel.registrations:  # its procedures come once it is ready
            raise ApplicationError(uris.KERNEL_NOT_READY,
                                   f"kernel {kernel_id} is {kernel.model()['execution_state']}: "
                                   f"wait for its 'ready' event on {uris.KERNELS_EVENTS}")
        raise ApplicationError(uris.NO_SUCH_KERNEL,
                               f"no kernel {kernel_id!r} here: start one with "
                               f"{uris.KERNELS_START} or list them with {uris.KERNELS_LIST}")

    # -- kernels ------------------------------------------------------------------

    def kernelspecs(self):
        return self.launcher.kernelspecs()

    def list_kernels(self):
        return [k.model() for k in self.kernels.values()]

    @defer.inlineCallbacks
    def start_kernel(self, kernel_name=None, wait=True, details=None):
        specs = self.launcher.kernelspecs()
        kernel_name = kernel_name or specs["default"]
        if kernel_name not in specs["kernelspecs"]:
            raise ApplicationError(uris.NO_SUCH_KERNELSPEC,
                                   f"no kernelspec {kernel_name!r}; installed: "
                                   f"{sorted(specs['kernelspecs'])}")
        if len(self.kernels) >= self.max_kernels:
            raise ApplicationError(uris.KERNEL_LIMIT,
                                   f"{len(self.kernels)} kernels are running, the limit "
                                   f"(--max-kernels) is {self.max_kernels}: shut one down first")
        kernel = self._new_kernel(kernel_name, getattr(details, "caller_authid", None))
        ready = kernel.supervisor.start()
        ready.addCallbacks(lambda _: self._ready(kernel), lambda f: self._failed(kernel, f))
        self._event("started", kernel)
        if not wait:
            ready.addErrback(lambda f: None)
            return kernel.model()
        yield ready
        return kernel.model()

    def _new_kernel(self, kernel_name, owner):
        kernel_id = uuid.uuid4().hex
        conversation = KernelConversation(
            kernel_id, lambda sub, output: self._publish_output(kernel_id, sub, output),
            OutputHistory(**self.history_limits),
            on_state=lambda state: self._state_changed(kernel_id))
        supervisor = KernelSupervisor(
            kernel_id, kernel_name, conversation, self.launcher, self.channels_factory,
            self.clock, lambda event, reason: self._lifecycle(kernel_id, event),
            ready_timeout=self.ready_timeout)
        kernel = ManagedKernel(kernel_id, kernel_name, owner, self.now(), conversation, supervisor)
        self.kernels[kernel_id] = kernel
        return kernel

    @defer.inlineCallbacks
    def _ready(self, kernel):
        if kernel.id not in self.kernels:
            return
        kernel.registrations = yield procedures.register_all(self, kernel)
        self._event("ready", kernel)

    def _failed(self, kernel, failure):
        self.log.warn("kernel {kernel_id} failed to start: {why}", kernel_id=kernel.id,
                      why=failure.getErrorMessage())
        kernel.supervisor.state = "dead"
        kernel.supervisor.reason = failure.getErrorMessage()
        self.kernels.pop(kernel.id, None)
        self._event("dead", kernel)
        failure.trap(KernelStartFailed, NoSuchKernelSpec)
        raise ApplicationError(uris.KERNEL_START_FAILED, failure.getErrorMessage())

    def _lifecycle(self, kernel_id, event):
        kernel = self.kernels.get(kernel_id)
        if kernel is not None:
            if event in ("dead", "restarting"):
                kernel.conversation.lifecycle_status(event, kernel.supervisor.reason)
            self._event(event, kernel)

    def _state_changed(self, kernel_id):
        kernel = self.kernels.get(kernel_id)
        if kernel is not None:
            kernel.last_activity = self.now()
            self._event("state", kernel)

    @defer.inlineCallbacks
    def remove_kernel(self, kernel):
        """Shut a kernel down, unregister it and forget it."""
        self.kernels.pop(kernel.id, None)
        for registration in kernel.registrations:
            if registration.active and self.is_attached():
                yield registration.unregister()
        yield kernel.supervisor.shutdown()
        self._event("stopped", kernel)

    def shutdown_all(self):
        """Shut every kernel down (for the service's stop); fires when all are gone."""
        return defer.DeferredList([self.remove_kernel(k) for k in list(self.kernels.values())],
                                  consumeErrors=True)

    # -- publishing ------------------------------------------------------------------

    def _publish_output(self, kernel_id, sub, output):
        if self.is_attached():
            self.publish(uris.kernel_topic(kernel_id, sub), options=_NO_ACK, **output)

    def _event(self, event, kernel):
        if self.is_attached():
            self.publish(uris.KERNELS_EVENTS, options=_NO_ACK, event=event, kernel=kernel.model())


_NO_ACK = PublishOptions(acknowledge=False)


def result(**kwargs):
    """A WAMP result carried in keyword arguments."""
    return CallResult(**kwargs)
