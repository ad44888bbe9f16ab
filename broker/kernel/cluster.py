"""A kernel host among others on one router (``--router``): one kernel list, placement.

Every host of a realm registers, besides the shared ``webkernel.kernels.list``
and ``webkernel.kernels.start``, its own procedures under
``webkernel.host.<host id>.`` (the host id is its WAMP session id, so it is
new after a reconnect): ``kernels.list``, ``kernels.start`` and ``load``.
Whichever host the router hands a shared call to answers it for the whole
cluster: it asks the router for the sessions of the kernel-host role
(``wamp.session.list``), then

- ``kernels.list``: gathers every host's list for the caller's identity;
- ``kernels.start``: asks every host its ``load`` and starts the kernel on
  the host with the most free kernel slots (then the most available memory)
  that has the kernelspec; a host that refuses because it is full is skipped
  for the next. No host has room: ``webkernel.error.kernel_limit``.

No state is kept between calls, so no host is special and none needs a
stand-by. Each host also keeps a :class:`~broker.kernel.directory.HostDirectory`
of the other hosts' kernels; when a host's session leaves the router
(``wamp.session.on_leave``) and its kernels have not come back under a new
session of their host within :data:`HOST_GRACE` seconds, the surviving host
with the lowest session id reports each ``dead`` to its watchers. Every call to another host has a caller-side timeout (Crossbar.io
reads WAMP's call timeout in seconds, not milliseconds). See docs/scaling.md.
"""

import os

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger

from broker import errors
from broker.kernel import uris
from broker.kernel.directory import HostDirectory
from broker.kernel.errors import KernelLimit, NoSuchKernelSpec

#: seconds a host waits for another host's answer
CALL_TIMEOUT = 10.0
#: seconds a host that left the router has to come back before its kernels are reported dead
HOST_GRACE = 3.0

log = Logger()


def memory_available():
    """Bytes of memory available on this machine (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def placement_key(load):
    """Sort key of a host's *load*: most free kernel slots first, then most memory."""
    return (-load["free_kernels"], -(load["memory_available"] or 0))


class Cluster:
    """The calls one host makes to the others (the *session* is the host's WAMP session)."""

    def __init__(self, session, session_id, role, clock, on_orphan, timeout=CALL_TIMEOUT,
                 grace=HOST_GRACE):
        self.session, self.session_id, self.role, self.clock = session, session_id, role, clock
        #: ``on_orphan(model, reason)``: tell the watchers of a kernel whose host is gone
        self.on_orphan = on_orphan
        self.timeout, self.grace = timeout, grace
        self.directory = HostDirectory()

    # -- the other hosts' kernels ---------------------------------------------------

    @defer.inlineCallbacks
    def watch(self):
        """Follow the other hosts' kernels and sessions (once joined)."""
        yield self.session.subscribe(self._heard, uris.HOST_KERNELS)
        yield self.session.subscribe(self._left, "wamp.session.on_leave")
        for host, models in (yield self.each("kernels.list", None, self.role)):
            for model in models:
                self._heard(host, "ready", model)

    def _heard(self, host, event, kernel):
        if host != self.session_id:
            self.directory.learn(host, event, kernel)

    def _left(self, session_id, *args, **kwargs):
        ids = [model["id"] for model in self.directory.kernels_of(session_id)]
        if ids:
            log.info("host {host} left the router with {count} kernels", host=session_id,
                     count=len(ids))
            self.clock.callLater(self.grace, self._orphaned, session_id, ids)

    @defer.inlineCallbacks
    def _orphaned(self, host, kernel_ids):
        models = self.directory.forget(host, kernel_ids)
        if not models or not self.session.is_attached():
            return
        hosts = yield self.hosts()
        if hosts and min(hosts) != self.session_id:
            return  # the survivor with the lowest id tells
        reason = (f"its kernel host (session {host}) left the router and did not come "
                  f"back within {self.grace:g} s")
        for model in models:
            self.on_orphan(model, reason)

    def _call(self, uri, *args, **kwargs):
        return self.session.call(uri, *args, **kwargs).addTimeout(self.timeout, self.clock)

    @defer.inlineCallbacks
    def hosts(self):
        """The host ids (session ids) of every kernel host on the router now."""
        ids = yield self._call("wamp.session.list", filter_authroles=[self.role])
        return sorted(ids)

    @defer.inlineCallbacks
    def each(self, name, *args, **kwargs):
        """``[(host id, result)]`` of ``webkernel.host.<id>.<name>`` on every host that answers."""
        hosts = yield self.hosts()
        results = yield defer.DeferredList(
            [self._call(uris.host_procedure(h, name), *args, **kwargs) for h in hosts],
            consumeErrors=True)
        answered = []
        for host, (ok, result) in zip(hosts, results):
            if ok:
                answered.append((host, result))
            else:  # a host leaving, or one that joined but has not registered yet
                log.info("host {host} did not answer {name}: {why}", host=host, name=name,
                         why=result.getErrorMessage())
        return answered

    @defer.inlineCallbacks
    def list_kernels(self, authid, authrole):
        """Every host's kernels this identity may see."""
        answers = yield self.each("kernels.list", authid, authrole)
        return [model for _, models in answers for model in models]

    @defer.inlineCallbacks
    def start_kernel(self, kernel_name, wait, authid, authrole):
        """Start a kernel on the least loaded host that has *kernel_name* (None: its default)."""
        loads = yield self.each("load")
        if not loads:
            raise KernelLimit("no kernel host answers: none has room for a kernel")
        fitting = [(h, load) for h, load in loads
                   if (kernel_name or load["default_kernelspec"]) in load["kernelspecs"]]
        if not fitting:
            names = sorted({n for _, load in loads for n in load["kernelspecs"]})
            raise NoSuchKernelSpec(f"no kernel host has kernelspec {kernel_name!r}; "
                                   f"installed: {names}")
        fitting.sort(key=lambda pair: placement_key(pair[1]))
        for host, load in fitting:
            if load["free_kernels"] <= 0:
                break
            try:
                model = yield self._call(uris.host_procedure(host, "kernels.start"),
                                         kernel_name, wait, authid, authrole)
            except ApplicationError as e:
                if e.error != errors.KERNEL_LIMIT:
                    raise
                continue  # filled up meanwhile (or the caller's quota there): the next
            return model
        total = sum(load["max_kernels"] for _, load in fitting)
        raise KernelLimit(f"the cluster is full: its {len(fitting)} hosts with kernelspec "
                          f"{kernel_name or 'default'} run {total} kernels, their limit "
                          "(--max-kernels each): shut one down first")


def host_load(host):
    """What placement needs to know of *host* (a KernelHost)."""
    specs = host.launcher.kernelspecs()
    return {"kernels": len(host.kernels), "max_kernels": host.max_kernels,
            "free_kernels": host.max_kernels - len(host.kernels),
            "memory_available": memory_available(), "pid": os.getpid(),
            "kernelspecs": sorted(specs["kernelspecs"]), "default_kernelspec": specs["default"]}
