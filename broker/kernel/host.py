"""The kernel host: a WAMP session that owns kernels and speaks for them.

It registers ``webkernel.kernelspecs``, ``webkernel.kernels.start`` and
``webkernel.kernels.list``, and per kernel the procedures of
``docs/kernels.md`` under ``webkernel.kernel.<id>.``; it publishes each
kernel's output on ``webkernel.kernel.<id>.iopub.<msg_type>`` and
``.stdin``, and lifecycle events on ``webkernel.kernels.events``. Each kernel
also has a prefix registration ``webkernel.kernel.<id>.``, made before its id
is given to anyone, that answers calls the kernel cannot take yet (it is
starting) or has no procedure for: a router routes every call for a kernel to
the host that owns it (a longer prefix wins). The shared prefix registration
on ``webkernel.kernel.`` answers only for kernels no host owns, with
``webkernel.error.no_such_kernel``.

One KernelHost may serve several WAMP sessions in turn (:meth:`KernelHost.take_over`):
a host joined to an external router that loses it keeps its kernels, and the
next session registers them again, same ids, same history.

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
from broker.kernel.cluster import Cluster, host_load
from broker.kernel.adoption import POLL_INTERVAL
from broker.kernel.errors import (
    KernelGone,
    KernelLimit,
    KernelUnavailable,
    NoSuchKernel,
    NoSuchKernelSpec,
)
from broker.kernel.history import OutputHistory, approximate_size
from broker.kernel.policy import OpenPolicy
from broker.kernel.records import KernelRecord, KernelRecordFile, NoRecordFile
from broker.kernel.session import KernelConversation
from broker.kernel.supervisor import KernelStartFailed, KernelSupervisor
from broker.service_session import QuietRefusals
from broker.timestamps import iso_utc


def recorded_shares(shared):
    """The shares a kernel's record holds, as the share procedure would have let them be."""
    if not isinstance(shared, dict):
        return {}
    valid = {user: access for user, access in shared.items() if isinstance(user, str)
             and 0 < len(user) <= 256 and access in procedures.SHARE_ACCESS}
    return dict(list(valid.items())[:procedures.MAX_SHARES])


class ManagedKernel:
    """A kernel as the host tracks it: model fields, supervisor, conversation."""

    def __init__(self, kernel_id, name, owner, created, conversation, supervisor):
        self.id, self.name, self.owner, self.created = kernel_id, name, owner, created
        self.last_activity = created
        #: user -> "watch" or "full" (see the share procedure); in the kernel's record, so a
        #: re-attaching service restores it
        self.shared = {}
        self.conversation = conversation
        self.supervisor = supervisor
        self.registrations = []
        #: its 'ready' (or 'reattached') was reached: its procedures belong on every session
        self.announced = False
        #: the prefix registration webkernel.kernel.<id>. on the current session
        self.prefix_registration = None
        #: the clock's time its kernels.start began (None: re-attached)
        self.start_began = None

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
                 heartbeat_interval=3.0, records=None, policy=None, pool=None, cluster=False,
                 metrics=None):
        super().__init__(config)
        #: a broker.metrics.Metrics to count executions, output and start times in, or None
        self.metrics = metrics
        #: a KernelPool that kernels.start takes ready kernels from, or None
        self.pool = pool
        #: one of several hosts on the router (--router): list and start answer for all
        self.in_cluster = cluster
        self.cluster = None
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
        #: one cell shared by the sessions that served these kernels in turn: the current one
        self._link = [self]

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
        if self.in_cluster:
            yield self._join_cluster(details)
        yield self._register_kept_kernels()
        self.log.info("kernel host joined realm {realm}", realm=details.realm)
        if not self.joined.called:
            self.joined.callback(self)

    @defer.inlineCallbacks
    def _join_cluster(self, details):
        """Register this host's own procedures, ``webkernel.host.<session id>.*`` (docs/scaling.md)."""
        self.cluster = Cluster(self, details.session, details.authrole, self.clock,
                               self._report_orphan)
        for name, function in (("kernels.list", self._host_list), ("load", self._host_load),
                               ("kernels.start", self._host_start)):
            uri = uris.host_procedure(details.session, name)
            yield self.register(arguments.checked(function, uri), uri,
                                options=RegisterOptions(details_arg="details"))
        yield self.cluster.watch()

    def _report_orphan(self, model, reason):
        """Tell a dead host's kernel's watchers it is dead (its status has no seq: not in a history)."""
        model = {**model, "execution_state": "dead", "reason": reason}
        status = {"seq": None, "msg_type": "status", "metadata": {}, "parent_msg_id": None,
                  "caller": None, "content": {"execution_state": "dead", "reason": reason}}
        self.publish(uris.kernel_topic(model["id"], "iopub.status"), options=_NO_ACK, **status)
        self._publish_event("dead", model)

    def _from_host(self, details):
        if _caller(details)[1] != self.cluster.role:
            raise errors.NotAuthorized(f"{uris.HOST_PREFIX}* is for kernel hosts only")

    def _host_list(self, authid, authrole, details=None):
        self._from_host(details)
        if authrole == self.cluster.role:  # another host's directory: all of them
            return [self._model(k) for k in self.kernels.values()]
        return self._visible_kernels(authid, authrole)

    def _model(self, kernel):
        """*kernel*'s model; in a cluster with ``host``, the id of the host that runs it."""
        model = kernel.model()
        if self.cluster is not None:
            model["host"] = self.cluster.session_id
        return model

    def _host_load(self, details=None):
        self._from_host(details)
        return host_load(self)

    def _host_start(self, kernel_name, wait, authid, authrole, details=None):
        self._from_host(details)
        return self._start(kernel_name, wait, authid, authrole)

    def take_over(self, previous):
        """Serve *previous*'s kernels from this session on (a new WAMP session of the same host).

        Their outputs, events and readiness reach this session from now on;
        :meth:`onJoin` registers them again with their ids, state and history.
        """
        self.kernels, previous.kernels = previous.kernels, {}
        self.joined = previous.joined
        self._link = previous._link
        self._link[0] = self

    @defer.inlineCallbacks
    def _register_kept_kernels(self):
        """Register again the kernels a previous session of this host served."""
        for kernel in list(self.kernels.values()):
            kernel.registrations = []
            yield self._register_prefix(kernel)
            if kernel.announced and kernel.id in self.kernels:
                kernel.registrations = yield procedures.register_all(self, kernel)
                self.log.info("kernel {kernel_id} registered again ({state})",
                              kernel_id=kernel.id, state=kernel.supervisor.state)
                self._event("ready", kernel)  # callable again (and here, for the other hosts)

    @defer.inlineCallbacks
    def _register_prefix(self, kernel):
        """Route every call for *kernel* here: ``webkernel.kernel.<id>.`` (prefix).

        With the router gone, the next session registers it (:meth:`_register_kept_kernels`).
        """
        if not self.is_attached():
            return
        try:
            kernel.prefix_registration = yield self.register(
                errors.answering(self._unknown_kernel), uris.kernel_procedure(kernel.id, ""),
                options=RegisterOptions(match="prefix", details_arg="details"))
        except Exception as e:
            self.log.info("kernel {kernel_id}: prefix not registered ({why}): on the next "
                          "session", kernel_id=kernel.id, why=e)

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
        if self.cluster is not None:
            return self.cluster.list_kernels(authid, authrole)
        return self._visible_kernels(authid, authrole)

    def _visible_kernels(self, authid, authrole):
        models = (self._model(k) for k in self.kernels.values())
        return [m for m in models if self.policy.visible(authid, authrole, m)]

    def start_kernel(self, kernel_name=None, wait=True, details=None):
        arguments.text("kernel_name", kernel_name, optional=True)
        arguments.flag("wait", wait)
        owner, authrole = _caller(details)
        if self.cluster is not None:
            return self.cluster.start_kernel(kernel_name, wait, owner, authrole)
        return self._start(kernel_name, wait, owner, authrole)

    @defer.inlineCallbacks
    def _start(self, kernel_name, wait, owner, authrole):
        specs = self.launcher.kernelspecs()
        kernel_name = kernel_name or specs["default"]
        if kernel_name not in specs["kernelspecs"]:
            raise NoSuchKernelSpec(f"no kernelspec {kernel_name!r}; installed: "
                                   f"{sorted(specs['kernelspecs'])}")
        if len(self.kernels) >= self.max_kernels:
            raise KernelLimit(f"{len(self.kernels)} kernels are running, the limit "
                              f"(--max-kernels) is {self.max_kernels}: shut one down first")
        self._check_quota(owner, authrole)
        warm = self.pool.take(kernel_name) if self.pool is not None else None
        if warm is None:
            kernel = self._new_kernel(kernel_name, owner)
        else:
            kernel = self._new_kernel(kernel_name, owner, kernel_id=warm.kernel_id,
                                      claim=warm.claim)
        kernel.start_began = self.clock.seconds()
        yield self._register_prefix(kernel)  # before anyone knows its id
        self._event("started", kernel)
        link = self._link
        ready = (kernel.supervisor.start() if warm is None
                 else kernel.supervisor.take_over(warm))
        ready.addCallbacks(lambda _: link[0]._ready(kernel), lambda f: link[0]._failed(kernel, f))
        if not wait:
            ready.addErrback(lambda f: None)
            return link[0]._model(kernel)
        yield _uncancellable(ready)  # a canceled start call must not cancel the start itself
        return link[0]._model(kernel)  # in a cluster with its host (the session serving it now)

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
        link = self._link  # the session serving this kernel may change (take_over)
        conversation = KernelConversation(
            kernel_id, lambda sub, output: link[0]._publish_output(kernel_id, sub, output),
            OutputHistory(**self.history_limits, last_seq=last_seq,
                          reserve=record_file.reserve_seq),
            clock=self.clock)
        supervisor = KernelSupervisor(
            kernel_id, kernel_name, conversation, self.launcher, self.channels_factory,
            self.clock, lambda event, reason: link[0]._told(kernel_id, event),
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
        kernel.announced = True
        if self.metrics is not None and kernel.start_began is not None:
            self.metrics.start_seconds.observe(self.clock.seconds() - kernel.start_began)
        yield self._register_announced(kernel)
        self._event("ready", kernel)

    @defer.inlineCallbacks
    def _register_announced(self, kernel):
        """Register *kernel*'s procedures now, or (router gone) when the next session joins."""
        if not self.is_attached():
            return
        try:
            kernel.registrations = yield procedures.register_all(self, kernel)
        except Exception as e:  # the session went meanwhile: the next one registers it
            self.log.info("kernel {kernel_id} not registered ({why}): on the next session",
                          kernel_id=kernel.id, why=e)

    def _failed(self, kernel, failure):
        self.log.warn("kernel {kernel_id} failed to start: {why}", kernel_id=kernel.id,
                      why=failure.getErrorMessage())
        self.kernels.pop(kernel.id, None)
        self._unregister_prefix(kernel)
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
        kernel.supervisor.record_file.shared(kernel.shared)
        self._event("shared", kernel)
        return kernel.model()

    @defer.inlineCallbacks
    def remove_kernel(self, kernel):
        """Shut a kernel down, unregister it and forget it."""
        self.kernels.pop(kernel.id, None)
        for registration in kernel.registrations:
            if self._live(registration):
                yield registration.unregister()
        self._unregister_prefix(kernel)
        yield kernel.supervisor.shutdown()
        self._event("stopped", kernel)

    def _unregister_prefix(self, kernel):
        registration, kernel.prefix_registration = kernel.prefix_registration, None
        if registration is not None and self._live(registration):
            registration.unregister().addErrback(lambda f: None)  # gone with its session

    def _live(self, registration):
        """Made on this session, which is attached (not on one a reconnect replaced)."""
        return registration.active and registration.session is self and self.is_attached()

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
        that runs but does not answer is killed. A warm pool's kernel (its
        record says ``pooled``) is killed, never re-attached. Fires when each is settled.
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
        if record.pooled:
            return d.addCallbacks(lambda launched: self._discard_pooled(record, claim, launched),
                                  lambda failure: self._gone(record, claim, failure))
        d.addCallbacks(lambda launched: self._adopt(record, claim, launched),
                       lambda failure: self._gone(record, claim, failure))
        return d

    def _discard_pooled(self, record, claim, launched):
        """A warm pool's kernel an earlier service left running (it crashed): no one's work, so killed."""
        launched.stop_watching()
        launched.signal("KILL")
        self.log.info("killed pooled kernel {kernel_id} (pid {pid}) that an earlier service left; "
                      "removed its files", kernel_id=record.kernel_id, pid=record.pid)
        self.records.remove(record.kernel_id)
        claim.release()

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
        kernel.shared = recorded_shares(record.shared)
        link = self._link
        d = self._register_prefix(kernel) if self.is_attached() else defer.succeed(None)
        d.addCallback(lambda _: kernel.supervisor.adopt(launched))
        d.addCallbacks(lambda _: link[0]._reattached(kernel),
                       lambda failure: link[0]._reattach_failed(kernel, failure))
        return d

    @defer.inlineCallbacks
    def _reattached(self, kernel):
        if kernel.id not in self.kernels:
            return
        kernel.announced = True
        yield self._register_announced(kernel)
        self.log.info("re-attached kernel {kernel_id} (pid {pid}); its output history starts "
                      "at seq {seq}", kernel_id=kernel.id, pid=kernel.supervisor.launched.pid,
                      seq=kernel.conversation.history.first_seq)
        self._event("reattached", kernel)

    def _reattach_failed(self, kernel, failure):
        self.log.warn("kernel {kernel_id} could not be re-attached (it is killed, its files "
                      "removed): {why}", kernel_id=kernel.id, why=failure.getErrorMessage())
        self.kernels.pop(kernel.id, None)
        self._unregister_prefix(kernel)
        self._event("dead", kernel)

    # -- publishing ------------------------------------------------------------------

    def _publish_output(self, kernel_id, sub, output):
        if self.metrics is not None:
            if sub == "iopub.execute_input":
                self.metrics.executions.inc()
            self.metrics.output_bytes.inc(approximate_size(output))
        if self.is_attached():
            self.publish(uris.kernel_topic(kernel_id, sub), options=_NO_ACK, **output)

    def _event(self, event, kernel):
        if self.is_attached():
            model = self._model(kernel)
            self._publish_event(event, model)
            if self.cluster is not None:
                self.publish(uris.HOST_KERNELS, options=_NO_ACK, host=self.cluster.session_id,
                             event=event, kernel=model)

    def _publish_event(self, event, model):
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
