"""A warm pool: kernels started and proven ready ahead of demand (``--pool NAME=N``).

:class:`KernelPool` keeps up to N idle kernels of each named kernelspec. Each
is launched by the same launcher as any kernel (same working directory, same
environment) under a fresh id whose kernel-directory lock the pool holds, and
is *proven ready* exactly as any kernel is (its channels' nudge: a
``kernel_info_reply`` on shell and a message through iopub). ``take(name)``
hands one out at once, channels and all: the host gives it its owner and
record and the supervisor takes it over without launching or nudging
(:meth:`~broker.kernel.supervisor.KernelSupervisor.take_over`).

Refilling runs in the background, one start at a time, so a refill never
puts more than one starting kernel beside the running ones. A pooled kernel
that exits while idle is forgotten (files removed) and replaced. A start that
fails is retried after :data:`RETRY_DELAY` seconds, not at once. ``stop()``
kills every pooled kernel (they hold no one's work) and fires once each has
exited and its files are gone.

Pooled kernels are not the host's: they are not listed, not counted against
``--max-kernels``, and carry no owner until handed out. Each has a record in
the kernel directory marked ``pooled`` (with its pid) until it is handed out,
so a service that starts after a crash kills the pooled kernels the crashed
one left (they hold no one's work) instead of leaving them running
(:meth:`~broker.kernel.host.KernelHost.reattach_all`).

In multi-user mode (*unassigned*, with ``--kernel-factory fork`` only) a
pooled kernel is *prepared*, not launched: a child of the fork template that
has initialised ipykernel as the service (sockets bound in the service's
kernel directory, no user's code, files or account) and waits, not serving,
for its owner (:meth:`~broker.kernel.fork_launcher.ForkingLauncher.prepare`).
It has no channels and no readiness proof; the supervisor gives it its
owner (:meth:`~broker.kernel.fork_launcher.ForkingLauncher.assign`: that
account's confinement, then it serves) and proves it ready as any launched
kernel. See docs/kernels.md, "Warm pool".
"""

import uuid

import attr
from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel.records import KernelRecord

#: seconds before the pool tries again after a pooled kernel failed to start
RETRY_DELAY = 10.0


class Relay:
    """The channels' ``on_message``: forwards to whoever holds the kernel now (pool, then conversation)."""

    def __init__(self):
        self.target = None

    def __call__(self, channel, msg):
        if self.target is not None:
            self.target(channel, msg)


@attr.s
class WarmKernel:
    """A pooled kernel: launched, its channels open and proven, its id's lock held.

    Or, prepared for multi-user mode: forked and initialised, no channels (``channels`` None).
    """

    kernel_id = attr.ib()
    kernel_name = attr.ib()
    launched = attr.ib(repr=False)
    channels = attr.ib(default=None, repr=False)
    #: the channels' on_message; point ``relay.target`` at the new holder
    relay = attr.ib(factory=Relay, repr=False)
    #: the kernel_info_reply content of its readiness proof
    kernel_info = attr.ib(default=None, repr=False)
    #: the kernel directory lock (a records Claim), or None without records
    claim = attr.ib(default=None, repr=False)


def parse_sizes(items):
    """``["python3=4", ...]`` as ``{"python3": 4}``; ValueError saying what is wrong."""
    sizes = {}
    for item in items:
        name, sep, count = item.partition("=")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise ValueError(f"--pool takes KERNELSPEC=N with N a positive whole number, "
                             f"not {item!r} (e.g. --pool python3=4)")
        sizes[name] = int(count)
    return sizes


class KernelPool:
    """Keeps ``sizes[name]`` ready kernels of each kernelspec *name*; hands them out with ``take``."""

    log = Logger()

    def __init__(self, launcher, channels_factory, clock, sizes, records=None,
                 ready_timeout=60.0, unassigned=False):
        #: multi-user mode: kernels are prepared (``launcher.prepare``), not launched and proven;
        #: their owner is given at hand-out (see the module's docstring)
        self.unassigned = unassigned
        self.launcher = launcher
        self.channels_factory = channels_factory
        self.clock = clock
        self.sizes = dict(sizes)
        self.records = records
        self.ready_timeout = ready_timeout
        self.idle = {name: [] for name in self.sizes}
        self.starting = None  # the WarmKernel being started (one at a time)
        self.running = False
        self._retry = None

    def start(self):
        """Begin filling the pool."""
        self.running = True
        self.refill()

    def take(self, kernel_name):
        """A ready WarmKernel of *kernel_name*, now out of the pool, or None; the pool refills."""
        kernels = self.idle.get(kernel_name)
        warm = kernels.pop(0) if kernels else None
        if warm is not None:
            warm.relay.target = None
            self.log.info("handed out pooled kernel {kernel_id} ({kernel_name}); "
                          "{left} in the pool", kernel_id=warm.kernel_id,
                          kernel_name=kernel_name, left=len(kernels))
        self.refill()
        return warm

    def count(self, kernel_name):
        """How many ready kernels of *kernel_name* the pool holds."""
        return len(self.idle.get(kernel_name, ()))

    # -- filling ----------------------------------------------------------------------

    def refill(self):
        """Start one kernel for the first kernelspec short of its size, unless one is starting."""
        if not self.running or self.starting is not None or self._retry is not None:
            return
        short = [name for name, size in self.sizes.items() if len(self.idle[name]) < size]
        if short:
            self._start_one(short[0])

    def _start_one(self, kernel_name):
        kernel_id = uuid.uuid4().hex
        claim = self.records.claim(kernel_id) if self.records is not None else None
        warm = self.starting = WarmKernel(kernel_id, kernel_name, None, claim=claim)
        if self.unassigned:  # an initialisation that never ends must not hold the pool's start
            d = self.launcher.prepare(kernel_name, kernel_id)
            d.addTimeout(self.ready_timeout, self.clock)
        else:
            d = self.launcher.launch(kernel_name, kernel_id)
        d.addCallback(self._launched, warm)
        d.addErrback(self._failed, warm)

    def _launched(self, launched, warm):
        warm.launched = launched
        self._record(warm)
        if self.starting is not warm:  # the pool stopped while it was launched
            self._discard(warm, kill=True)
            return None
        launched.exited.addBoth(self._exited, warm)
        if launched.exited.called:  # it died already: _exited has dealt with it
            return None
        if self.unassigned:  # it serves no one yet: proven once it has its owner
            return self._ready(None, warm)
        warm.channels = self.channels_factory(launched.connection_info, warm.relay,
                                              warm.kernel_id)
        return warm.channels.nudge(timeout=self.ready_timeout).addCallback(self._ready, warm)

    def _ready(self, kernel_info, warm):
        if self.starting is not warm:
            return
        warm.kernel_info = kernel_info
        self.starting = None
        self.idle[warm.kernel_name].append(warm)
        self.log.info("pooled kernel {kernel_id} ({kernel_name}) is ready; {count} in the pool",
                      kernel_id=warm.kernel_id, kernel_name=warm.kernel_name,
                      count=len(self.idle[warm.kernel_name]))
        self.refill()

    def _failed(self, failure, warm):
        if self.starting is not warm:
            return None
        self.log.warn("a pooled {kernel_name} kernel did not start ({why}); trying again in "
                      "{delay} s", kernel_name=warm.kernel_name, why=failure.getErrorMessage(),
                      delay=RETRY_DELAY)
        self.starting = None
        self._discard(warm, kill=True)
        if self.running:
            self._retry = self.clock.callLater(RETRY_DELAY, self._retry_now)
        return None

    def _retry_now(self):
        self._retry = None
        self.refill()

    def _record(self, warm):
        """Mark the kernel's id in the kernel directory as pooled, with its pid (see the module)."""
        if self.records is None:
            return
        try:
            self.records.write(KernelRecord(warm.kernel_id, warm.kernel_name, None, None,
                                            pid=warm.launched.pid, pooled=True))
        except OSError as e:
            self.log.error("cannot record pooled kernel {kernel_id}: {error}",
                           kernel_id=warm.kernel_id, error=str(e))

    def _exited(self, result, warm):
        """A pooled kernel's process ended: forget it if it was the pool's, and refill."""
        idle = self.idle.get(warm.kernel_name, [])
        if warm in idle:
            idle.remove(warm)
            self.log.warn("pooled kernel {kernel_id} exited while idle ({status}): replacing it",
                          kernel_id=warm.kernel_id, status=str(result))
            self._discard(warm)
            self.refill()
        elif self.starting is warm:
            self.starting = None
            self._discard(warm)
            self.log.warn("a pooled {kernel_name} kernel exited while starting ({status})",
                          kernel_name=warm.kernel_name, status=str(result))
            if self.running:
                self._retry = self.clock.callLater(RETRY_DELAY, self._retry_now)
        return result

    def _discard(self, warm, kill=False):
        """Close, (kill,) and remove the files of a kernel the pool gives up."""
        if warm.channels is not None and not warm.channels.closed:
            warm.channels.close()
        if warm.launched is not None:
            if kill and not warm.launched.exited.called:
                warm.launched.signal("KILL")
            warm.launched.remove_files()
        if self.records is not None:
            self.records.remove(warm.kernel_id)
        if warm.claim is not None:
            warm.claim.release()

    # -- stopping -----------------------------------------------------------------------

    def stop(self):
        """Stop refilling; kill every pooled kernel; fires once all have exited and their files are gone."""
        self.running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        kernels = [warm for idle in self.idle.values() for warm in idle]
        if self.starting is not None:
            kernels.append(self.starting)
        self.idle = {name: [] for name in self.sizes}
        self.starting = None
        exits = []
        for warm in kernels:
            if warm.launched is not None and not warm.launched.exited.called:
                exits.append(_exit_of(warm.launched))
            self._discard(warm, kill=True)
        return defer.DeferredList(exits, consumeErrors=True)


def _exit_of(launched):
    """A Deferred that fires when *launched* exits (without taking its result)."""
    d = defer.Deferred()
    launched.exited.addBoth(lambda result: (d.called or d.callback(None), result)[1])
    return d
