"""The kernel launcher of ``--kernel-factory fork``: ipykernel kernels forked, others spawned.

:class:`ForkingLauncher` is a :class:`~broker.kernel.launcher.KernelLauncher`
whose ipykernel kernelspecs (argv ``PYTHON -m ipykernel_launcher ...``) are
started by a :class:`~broker.kernel.forking.ForkServer`, one per interpreter:
the connection file (fresh HMAC key, its own ports, 0600) and the ``.log`` are
written as for a spawned kernel, and the template forks a child that runs
IPKernelApp on that file. Any other kernelspec is spawned, and the log says
once why it is not forked. Multi-user mode (a launcher with *accounts*)
spawns every kernel (see docs/kernels.md, "Fork server").
"""

import os

from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel import records
from broker.kernel.forking import ForkedKernel, ForkServer, fork_arguments
from broker.kernel.kernelspecs import find_spec, kernel_command, kernel_environment
from broker.kernel.errors import InvalidKernelId
from broker.kernel.launcher import _KERNEL_ID, KernelLauncher


class ForkingLauncher(KernelLauncher):
    """Forks ipykernel kernels from a template (per interpreter); spawns the rest."""

    log = Logger()

    def __init__(self, reactor, kernel_dir, preload=(), **options):
        super().__init__(reactor, kernel_dir, **options)
        self.preload = tuple(preload)
        self.servers = {}   # interpreter path -> ForkServer
        self._told = set()  # kernelspecs whose reason not to fork was logged

    def _launch(self, kernel_name, kernel_id, account=None):
        spec = find_spec(self.spec_manager, kernel_name)
        env = kernel_environment(spec, self.environ)
        env.pop("JPY_PARENT_PID", None)
        connection_file = records.connection_path(self.kernel_dir, kernel_id)
        executable, argv = kernel_command(spec, connection_file, env.get("PATH", os.defpath))
        why = self._why_not_fork(argv, account)
        if why is not None:
            self._say_why(kernel_name, why)
            return super()._launch(kernel_name, kernel_id, account)
        return self._fork(kernel_name, kernel_id, spec, env, connection_file, executable, argv)

    def _why_not_fork(self, argv, account):
        if account is not None:
            return "multi-user mode: kernels are spawned as their owner's account"
        try:
            fork_arguments(argv)
        except ValueError as e:
            return str(e)
        return None

    def _say_why(self, kernel_name, why):
        if kernel_name not in self._told:
            self._told.add(kernel_name)
            self.log.info("kernelspec {kernel_name} is spawned, not forked: {why}",
                          kernel_name=kernel_name, why=why)

    def _fork(self, kernel_name, kernel_id, spec, env, connection_file, executable, argv):
        self._check_id(kernel_id)
        info = self._write_connection_file(connection_file, kernel_name)
        request = {"fork": kernel_id, "argv": fork_arguments(argv),
                   "connection_file": connection_file,
                   "log": records.log_path(self.kernel_dir, kernel_id),
                   "cwd": self.cwd, "env": env, "confine": None}
        d = self.server_for(executable, env).fork(request)
        d.addCallbacks(lambda answer: self._forked(answer, kernel_id, kernel_name, spec, info,
                                                   connection_file, executable),
                       lambda failure: self._not_forked(failure, connection_file))
        return d

    def _forked(self, answer, kernel_id, kernel_name, spec, info, connection_file, executable):
        kernel = ForkedKernel(kernel_id, kernel_name, info, connection_file, answer["pid"],
                              answer.get("start_time"), self.reactor,
                              interrupt_mode=getattr(spec, "interrupt_mode", None) or "signal",
                              log_cap=self._log_cap(kernel_id))
        self.servers[executable].watch(kernel)
        self.log.info("forked kernel {kernel_id} ({kernel_name}), pid {pid}",
                      kernel_id=kernel_id, kernel_name=kernel_name, pid=kernel.pid)
        return kernel

    def _not_forked(self, failure, connection_file):
        records.remove_launch_files(connection_file)
        return failure

    def _check_id(self, kernel_id):
        if not isinstance(kernel_id, str) or not _KERNEL_ID.fullmatch(kernel_id):
            raise InvalidKernelId(f"kernel id {kernel_id!r} is not a string of [0-9a-z_]")

    def server_for(self, executable, env):
        """The ForkServer of *executable* (started with *env* the first time)."""
        server = self.servers.get(executable)
        if server is None:
            server = self.servers[executable] = ForkServer(self.reactor, executable, env,
                                                           self.preload)
            server.start().addErrback(lambda f: None)
        return server

    def start_templates(self, kernel_names):
        """Start the templates of *kernel_names* now (not at the first fork); fires when all are ready."""
        ready = []
        for name in kernel_names:
            try:
                spec = find_spec(self.spec_manager, name)
                env = kernel_environment(spec, self.environ)
                env.pop("JPY_PARENT_PID", None)
                executable, argv = kernel_command(spec, "unused.json", env.get("PATH", os.defpath))
                fork_arguments(argv)
            except Exception as e:  # noqa: BLE001 - such a kernelspec is spawned; say why at its launch
                self.log.info("no fork template for {kernel_name}: {why}", kernel_name=name, why=e)
                continue
            server = self.server_for(executable, env)
            ready.append(server.ready)
        return defer.DeferredList(ready, consumeErrors=True)

    def stop(self):
        """Stop every template (their kernels are not touched); fires when all are gone."""
        return defer.DeferredList([s.stop() for s in self.servers.values()], consumeErrors=True)
