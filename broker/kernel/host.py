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

With *records* (the kernel directory's :class:`~broker.kernel.records.KernelRecords`)
every kernel has a metadata file, and :meth:`KernelHost.reattach_all` takes
over the kernels an earlier service left running (it crashed, or stopped
with ``--keep-kernels``): same id, same state, output numbered on after the
old service's last seq; event ``reattached``.
"""

import uuid

from autobahn.twisted.wamp import Session
from autobahn.wamp.types import PublishOptions, RegisterOptions
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from broker import errors
from broker.kernel import arguments, procedures
from broker.kernel import uris
from broker.kernel.adoption import POLL_INTERVAL
from broker.kernel.errors import (
    KernelGone,
    KernelLimit,
    KernelUnavailable,
    NoSuchKernel,
    NoSuchKernelSpec,
)
from broker.kernel.history import OutputHistory
from broker.kernel.policy import OpenPolicy
from broker.kernel.records import KernelRecord, KernelRecordFile, NoRecordFile
from broker.kernel.session import KernelConversation
from broker.kernel.supervisor import KernelStartFailed, KernelSupervisor
from broker.service_session import QuietRefusals
from broker.timestamps import iso_utc


class ManagedKernel:
    """A kernel as the host tracks it: model fields, supervisor, conversation."""

    def __init__(self, kernel_id, name, owner, created, conversation, supervisor):
        self.id, self.name, self.owner, self.created = kernel_id, name, owner, created
        self.last_activity = created
        #: user -> "watch" or "full" (see the share procedure); not kept across a re-attach
        self.shared = {}
        self.conversation = conversation
        self.supervisor = supervisor
        self.registrations = []

    def model(self):
        state = self.supervisor.state
        if state in ("idle", "busy") and not self.registrations:
            # idle or busy only once its procedures are registered (its 'ready' or
            # 'reattached' event): a client seeing idle may call them at once
            state = "starting"
        return {
            "id": self.id, "name": self.name, "owner": self.owner,
            "execution_state": state, "last_activity": self.last_activity,
            "created": self.created,
            "reason": self.supervisor.reason if state == "dead" else None,
            "shared": dict(self.shared),
        }


class KernelHost(QuietRefusals, Session):
    """Owns kernels; registers their procedures; publishes their output."""

    log = Logger()

    def __init__(self, config, launcher, channels_factory, clock, max_kernels=20,
                 ready_timeout=60.0, history_messages=None, history_bytes=None,
                 heartbeat_interval=3.0, records=None, policy=None, pool=None):
        super().__init__(config)
        #: a KernelPool that kernels.start takes ready kernels from, or None
        self.pool = pool
        self.launcher = launcher
        self.channels_factory = channels_factory
        self.clock = clock
        self.max_kernels = max_kernels
        self.ready_timeout = ready_timeout
        self.heartbeat_interval = heartbeat_interval
        self.records = records
        self.policy = policy or OpenPolicy()
        self.history_limits = {k: v for k, v in
                               (("max_messages", history_messages), ("max_bytes", history_bytes))
                               if v is not None}
        self.kernels = {}
        self.joined = defer.Deferred()

    def now(self):
        return iso_utc(self.clock.seconds())

    # -- joining ----------------------------------------------------------------

    @defer.inlineCallbacks
    def onJoin(self, details):
        # shared (round robin), so several hosts can join one router (scale-out)
        shared = RegisterOptions(invoke="roundrobin")
        with_details = RegisterOptions(details_arg="details", invoke="roundrobin")
        for function, uri, options in ((self.kernelspecs, uris.KERNELSPECS, shared),
                                       (self.start_kernel, uris.KERNELS_START, with_details),
                                       (self.list_kernels, uris.KERNELS_LIST, with_details)):
            yield self.register(arguments.checked(function, uri), uri, options=options)
        yield self.register(errors.answering(self._unknown_kernel), uris.KERNEL_PREFIX,
                            options=RegisterOptions(match="prefix", details_arg="details",
                                                    invoke="roundrobin"))
        self.log.info("kernel host joined realm {realm}", realm=details.realm)
        if not self.joined.called:
            self.joined.callback(self)

    def _unknown_kernel(self, *args, details=None, **kwargs):
        kernel_id = uris.kernel_id_of(details.procedure or "")
        kernel = self.kernels.get(kernel_id)
        if kernel is not None and not kernel.registrations:  # its procedures come once it is ready
            raise KernelUnavailable(f"kernel {kernel_id} is {kernel.model()['execution_state']}: "
                                    f"wait for its 'ready' event on {uris.KERNELS_EVENTS}")
        if kernel is not None:
            names = sorted({**procedures.PROCEDURES, **procedures.LIFECYCLE})
            raise errors.NoSuchProcedure(f"kernel {kernel_id} has no procedure "
                                         f"{details.procedure!r}; its procedures are {', '.join(names)}")
        raise NoSuchKernel(f"no kernel {kernel_id!r} here: start one with "
                           f"{uris.KERNELS_START} or list them with {uris.KERNELS_LIST}")

    # -- kernels ------------------------------------------------------------------

    def kernelspecs(self):
        return self.launcher.kernelspecs()

    def list_kernels(self, details=None):
        authid, authrole = _caller(details)
        models = (k.model() for k in self.kernels.values())
        return [m for m in models if self.policy.visible(authid, authrole, m)]

    @defer.inlineCallbacks
    def start_kernel(self, kernel_name=None, wait=True, details=None):
        arguments.text("kernel_name", kernel_name, optional=True)
        arguments.flag("wait", wait)
        specs = self.launcher.kernelspecs()
        kernel_name = kernel_name or specs["default"]
        if kernel_name not in specs["kernelspecs"]:
            raise NoSuchKernelSpec(f"no kernelspec {kernel_name!r}; installed: "
                                   f"{sorted(specs['kernelspecs'])}")
        if len(self.kernels) >= self.max_kernels:
            raise KernelLimit(f"{len(self.kernels)} kernels are running, the limit "
                              f"(--max-kernels) is {self.max_kernels}: shut one down first")
        owner, authrole = _caller(details)
        self._check_quota(owner, authrole)
        warm = self.pool.take(kernel_name) if self.pool is not None else None
        if warm is None:
            kernel = self._new_kernel(kernel_name, owner)
        else:
            kernel = self._new_kernel(kernel_name, owner, kernel_id=warm.kernel_id,
                                      claim=warm.claim)
        self._event("started", kernel)
        ready = (kernel.supervisor.start() if warm is None
                 else kernel.supervisor.take_over(warm))
        ready.addCallbacks(lambda _: self._ready(kernel), lambda f: self._failed(kernel, f))
        if not wait:
            ready.addErrback(lambda f: None)
            return kernel.model()
        yield _uncancellable(ready)  # a canceled start call must not cancel the start itself
        return kernel.model()

    def _check_quota(self, owner, authrole):
        """Refuse a start past the caller's quota, counting kernels still starting."""
        quota = self.policy.quota(authrole)
        if quota is None:
            return
        owned = sum(1 for k in self.kernels.values() if k.owner == owner)
        if owned >= quota:
            raise KernelLimit(f"you have {owned} kernels, the limit per user "
                              f"(--max-kernels-per-user) is {quota}: shut one down first")

    def _new_kernel(self, kernel_name, owner, kernel_id=None, created=None, last_seq=0,
                    claim=None):
        kernel_id = kernel_id or uuid.uuid4().hex
        created = created or self.now()
        record_file = self._record_file(
            KernelRecord(kernel_id, kernel_name, owner, created, seq_reserved=last_seq), claim)
        conversation = KernelConversation(
            kernel_id, lambda sub, output: self._publish_output(kernel_id, sub, output),
            OutputHistory(**self.history_limits, last_seq=last_seq,
                          reserve=record_file.reserve_seq),
            clock=self.clock)
        supervisor = KernelSupervisor(
            kernel_id, kernel_name, conversation, self.launcher, self.channels_factory,
            self.clock, lambda event, reason: self._told(kernel_id, event),
            ready_timeout=self.ready_timeout, heartbeat_interval=self.heartbeat_interval,
            record_file=record_file, owner=owner)
        kernel = ManagedKernel(kernel_id, kernel_name, owner, created, conversation, supervisor)
        self.kernels[kernel_id] = kernel
        return kernel

    def _record_file(self, record, claim):
        if self.records is None:
            return NoRecordFile()
        claim = claim or self.records.claim(record.kernel_id)
        return KernelRecordFile(self.records, record, claim)

    @defer.inlineCallbacks
    def _ready(self, kernel):
        if kernel.id not in self.kernels:
            return
        kernel.registrations = yield procedures.register_all(self, kernel)
        self._event("ready", kernel)

    def _failed(self, kernel, failure):
        self.log.warn("kernel {kernel_id} failed to start: {why}", kernel_id=kernel.id,
                      why=failure.getErrorMessage())
        self.kernels.pop(kernel.id, None)
        self._event("dead", kernel)  # the supervisor set it dead; the host says so as it forgets it
        failure.trap(KernelStartFailed, NoSuchKernelSpec)  # the launcher's: a spec gone since
        raise KernelStartFailed(failure.getErrorMessage())

    def _told(self, kernel_id, event):
        """The supervisor changed the kernel's state: publish *event* (``state``: busy or idle)."""
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            return
        if event == "state":
            kernel.last_activity = self.now()
        elif event in ("dead", "restarting"):
            kernel.conversation.lifecycle_status(event, kernel.supervisor.reason)
        self._event(event, kernel)

    def set_share(self, kernel, user, access):
        """Share *kernel* with *user* for *access*, or stop (None); event ``shared``; its model."""
        if access is None:
            kernel.shared.pop(user, None)
        else:
            kernel.shared[user] = access
        self._event("shared", kernel)
        return kernel.model()

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

    def detach_all(self):
        """Leave every live kernel running, files kept, for the next service (``--keep-kernels``)."""
        kernels, self.kernels = list(self.kernels.values()), {}
        for kernel in kernels:
            if kernel.supervisor.state != "dead":
                kernel.supervisor.detach()
        return len(kernels)

    # -- re-attaching ----------------------------------------------------------------

    def reattach_all(self):
        """Take over the kernels in the kernel directory that no live service holds.

        Each whose process runs and answers (on control, within the ready
        timeout) is re-attached; the files of the others are removed, and one
        that runs but does not answer is killed. Fires when each is settled.
        """
        ids = sorted(self.records.kernel_ids()) if self.records is not None else []
        return defer.DeferredList([defer.maybeDeferred(self._reattach, kernel_id).addErrback(
            lambda f, kernel_id=kernel_id: self.log.failure(
                "cannot re-attach kernel {kernel_id}", f, kernel_id=kernel_id))
            for kernel_id in ids])

    def _reattach(self, kernel_id):
        claim = None if kernel_id in self.kernels else self.records.claim(kernel_id)
        if claim is None:
            self.log.info("kernel {kernel_id} is held by a running service: left to it",
                          kernel_id=kernel_id)
            return defer.succeed(None)
        record = self.records.read(kernel_id)
        if record is None or record.kernel_id != kernel_id:
            self.log.info("removed the files of kernel {kernel_id}: it has no metadata",
                          kernel_id=kernel_id)
            self.records.remove(kernel_id)
            claim.release()
            return defer.succeed(None)
        d = self.launcher.adopt(record.kernel_name, kernel_id, record.pid,
                                poll_interval=min(POLL_INTERVAL, self.heartbeat_interval))
        d.addCallbacks(lambda launched: self._adopt(record, claim, launched),
                       lambda failure: self._gone(record, claim, failure))
        return d

    def _gone(self, record, claim, failure):
        failure.trap(KernelGone)
        self.log.info("kernel {kernel_id} is gone ({why}): removed its files",
                      kernel_id=record.kernel_id, why=failure.getErrorMessage())
        self.records.remove(record.kernel_id)
        claim.release()

    def _adopt(self, record, claim, launched):
        kernel = self._new_kernel(record.kernel_name, record.owner, kernel_id=record.kernel_id,
                                  created=record.created, last_seq=record.seq_reserved,
                                  claim=claim)
        d = kernel.supervisor.adopt(launched)
        d.addCallbacks(lambda _: self._reattached(kernel),
                       lambda failure: self._reattach_failed(kernel, failure))
        return d

    @defer.inlineCallbacks
    def _reattached(self, kernel):
        if kernel.id not in self.kernels:
            return
        kernel.registrations = yield procedures.register_all(self, kernel)
        self.log.info("re-attached kernel {kernel_id} (pid {pid}); its output history starts "
                      "at seq {seq}", kernel_id=kernel.id, pid=kernel.supervisor.launched.pid,
                      seq=kernel.conversation.history.first_seq)
        self._event("reattached", kernel)

    def _reattach_failed(self, kernel, failure):
        self.log.warn("kernel {kernel_id} could not be re-attached (it is killed, its files "
                      "removed): {why}", kernel_id=kernel.id, why=failure.getErrorMessage())
        self.kernels.pop(kernel.id, None)
        self._event("dead", kernel)

    # -- publishing ------------------------------------------------------------------

    def _publish_output(self, kernel_id, sub, output):
        if self.is_attached():
            self.publish(uris.kernel_topic(kernel_id, sub), options=_NO_ACK, **output)

    def _event(self, event, kernel):
        if self.is_attached():
            model = kernel.model()
            for audience in self.policy.audiences(model):
                self.publish(uris.KERNELS_EVENTS, options=PublishOptions(
                    acknowledge=False, **audience), event=event, kernel=model)


_NO_ACK = PublishOptions(acknowledge=False)


def _caller(details):
    """``(authid, authrole)`` of a call's caller, when the router disclosed it."""
    return getattr(details, "caller_authid", None), getattr(details, "caller_authrole", None)


def _uncancellable(d):
    """A Deferred with *d*'s result whose cancellation leaves *d* alone."""
    out = defer.Deferred()

    def forward(result):
        if not out.called:
            (out.errback if isinstance(result, Failure) else out.callback)(result)
        return None

    d.addBoth(forward)
    return out
