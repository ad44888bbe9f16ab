"""The kernel host as a twistd service.

On start it attaches the host (through the ``attach`` function the wiring,
:mod:`broker.tap`, hands it) and re-attaches the kernels an earlier service
left in the kernel directory; on stop it shuts every kernel down, or with
*keep_kernels* leaves them running, their files kept, for the next start.
With *pool* (``{kernelspec name: N}``, ``--pool``) it keeps a warm pool
(:mod:`broker.kernel.pool`) from start to stop; pooled kernels are killed on
stop even with *keep_kernels* (no one's work is in them).
"""

import os

from autobahn.wamp import types
from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from broker.auth import HOST_AUTHID, KERNEL_HOST_ROLE, Principal
from broker.kernel.accounts import thread_runner
from broker.kernel.fork_launcher import ForkingLauncher
from broker.kernel.host import KernelHost
from broker.kernel.launcher import KernelLauncher
from broker.kernel.logs import DEFAULT_MAX_BYTES as DEFAULT_LOG_BYTES
from broker.kernel.pool import KernelPool
from broker.kernel.records import KernelRecords
from broker.kernel.zmq_channels import KernelChannels, make_zmq_factory, session_for
from broker.realm_member import (  # noqa: F401  (DEFAULT_*, RECONNECT_MAX_DELAY: the host's too)
    DEFAULT_ROUTER_PING,
    DEFAULT_ROUTER_PING_TIMEOUT,
    RECONNECT_MAX_DELAY,
    joining_component,
    router_transport,
)


def default_kernel_dir():
    """``<jupyter runtime dir>/webkernel``: where connection files go by default."""
    from jupyter_core.paths import jupyter_runtime_dir

    return os.path.join(jupyter_runtime_dir(), "webkernel")


def kernel_environ():
    """The environment kernels start with: ours, minus debugger noise at start-up.

    ipykernel's debugger (pydevd) prints warnings about frozen modules on
    every start, as stderr output with no parent; they would land in every
    kernel's output history.
    """
    return {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def zmq_channels_factory(reactor, kernels=None):
    """A factory of real ZeroMQ channels on *reactor* (one ZeroMQ context, room for *kernels*)."""
    zmq_factory = make_zmq_factory(reactor, kernels)

    def make(connection_info, on_message, kernel_id):
        return KernelChannels(zmq_factory, connection_info, session_for(connection_info),
                              on_message, kernel_id=kernel_id)
    return make


def make_launcher(reactor, kernel_dir, kernel_factory="spawn", preload=(), **options):
    """The launcher of *kernel_factory*: ``spawn`` (every kernel a new process) or ``fork``."""
    if kernel_factory == "fork":
        return ForkingLauncher(reactor, kernel_dir, preload=preload, **options)
    return KernelLauncher(reactor, kernel_dir, **options)


def _start_reattaching(host):
    host.reattach_all()
    return host


class KernelHostService(service.Service):
    """Runs a :class:`KernelHost` attached in-process to the embedded router.

    *attach* is ``attach(app_session, principal)``: it connects a session to
    the router as that principal (:func:`broker.router.local.attacher`).
    """

    log = Logger()

    def __init__(self, attach, realm, reactor, kernel_dir, max_kernels=20, ready_timeout=60.0,
                 history_messages=None, history_bytes=None, heartbeat_interval=3.0,
                 keep_kernels=False, launcher=None, channels_factory=None, records=None,
                 policy=None, kernel_log_bytes=DEFAULT_LOG_BYTES, accounts=None,
                 confinement=None, pool=None,
                 kernel_factory="spawn", preload=(), metrics=None):
        self.attach = attach
        self.realm = realm
        self.reactor = reactor
        self.launcher = launcher or make_launcher(
            reactor, kernel_dir, kernel_factory, preload, environ=kernel_environ(),
            log_max_bytes=kernel_log_bytes, accounts=accounts, confinement=confinement,
            run_blocking=thread_runner(reactor))
        # every kernel the host may run plus every pooled one has its channels open at once
        self.channels_factory = channels_factory or zmq_channels_factory(
            reactor, max_kernels + sum((pool or {}).values()))
        self.keep_kernels = keep_kernels
        records = records or KernelRecords(kernel_dir)
        #: the warm pool (``--pool``): kernels started ahead of demand, or None
        self.pool = None if not pool else KernelPool(
            self.launcher, self.channels_factory, reactor, pool, records=records,
            ready_timeout=ready_timeout, unassigned=self.launcher.accounts is not None)
        self.options = dict(max_kernels=max_kernels, ready_timeout=ready_timeout,
                            history_messages=history_messages, history_bytes=history_bytes,
                            heartbeat_interval=heartbeat_interval,
                            records=records, policy=policy, pool=self.pool, metrics=metrics)
        self.host = None
        if metrics is not None:
            metrics.watch_kernels(self._kernel_states)

    def _kernel_states(self):
        kernels = self.host.kernels.values() if self.host is not None else ()
        return [k.model()["execution_state"] for k in kernels]

    def startService(self):
        super().startService()
        self.host = self._make_host(types.ComponentConfig(realm=self.realm))
        self.attach(self.host, Principal("kernel-host", KERNEL_HOST_ROLE, "local"))
        self._start_warm()

    def _start_warm(self):
        """Start the fork templates (``--kernel-factory fork``) and the warm pool, if any."""
        if isinstance(self.launcher, ForkingLauncher):
            default = self.launcher.kernelspecs()["default"]
            self.launcher.start_templates({default, *(self.pool.sizes if self.pool else ())})
        if self.pool is not None:
            self.log.info("warm pool: {sizes}", sizes=", ".join(
                f"{count} {name}" for name, count in self.pool.sizes.items()))
            self.pool.start()

    def _make_host(self, config):
        """A KernelHost; the first one made re-attaches the kernel directory's kernels once joined."""
        host = KernelHost(config, self.launcher, self.channels_factory, self.reactor, **self.options)
        if self.host is None:
            host.joined.addCallback(_start_reattaching)
        return host

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self.pool is not None:
            yield self.pool.stop()
        if self.host is not None and self.keep_kernels:
            count = self.host.detach_all()
            self.log.info("left {count} kernels running (--keep-kernels)", count=count)
        elif self.host is not None:
            count = len(self.host.kernels)
            yield self.host.shutdown_all()
            self.log.info("shut down {count} kernels", count=count)
        if isinstance(self.launcher, ForkingLauncher):
            yield self.launcher.stop()


class RemoteKernelHostService(KernelHostService):
    """Runs a :class:`KernelHost` joined to an external router over WebSocket (``--router``).

    It authenticates as ``webkernel_host`` with the router's host token, and
    reconnects (with Autobahn's back-off) if the router goes away. Its kernels
    outlive the connection: each new WAMP session takes over the previous
    one's kernels (:meth:`KernelHost.take_over`) and registers them again.
    It pings the router (:func:`router_transport`), so it notices a connection
    that died without a FIN (a network partition) and makes a new one.
    """

    def __init__(self, url, realm, token, reactor, kernel_dir, ping_interval=DEFAULT_ROUTER_PING,
                 ping_timeout=DEFAULT_ROUTER_PING_TIMEOUT, **options):
        super().__init__(None, realm, reactor, kernel_dir, **options)
        self.options["cluster"] = True  # one host of several: list and start answer for all
        self.url = url
        self.transport = router_transport(url, ping_interval, ping_timeout)
        self.token = token
        self.component = None

    def startService(self):
        service.Service.startService(self)

        def make_host(config):
            host = self._make_host(config)
            if self.host is not None:
                host.take_over(self.host)
            self.host = host
            return host

        self.component = joining_component(self.transport, self.realm, HOST_AUTHID, self.token,
                                           make_host)
        self.component.start(self.reactor)
        self._start_warm()
        self.log.info("kernel host joining {url} (realm {realm})", url=self.url, realm=self.realm)

    @defer.inlineCallbacks
    def stopService(self):
        yield super().stopService()
        if self.component is not None:
            yield self.component.stop()
