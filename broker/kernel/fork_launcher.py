"""The kernel launcher of ``--kernel-factory fork``: ipykernel kernels forked, others spawned.

:class:`ForkingLauncher` is a :class:`~broker.kernel.launcher.KernelLauncher`
whose ipykernel kernelspecs (argv ``PYTHON -m ipykernel_launcher ...``) are
started by a :class:`~broker.kernel.forking.ForkServer`, one per interpreter:
the connection file (fresh HMAC key, its own ports, 0600) and the ``.log`` are
written as for a spawned kernel, and the template forks a child that runs
IPKernelApp on that file. Any other kernelspec is spawned, and the log says
once why it is not forked. In multi-user mode (a launcher with *accounts*)
the kernel is forked too: the child runs the spawn launcher's own
``confine`` (:data:`~broker.kernel.confinement.CONFINE_FUNCTION`: limits, then
the switch to the owner's account, then its working directory) before any
kernel code, and talks over ipc sockets in the account's home, as a spawned
confined kernel does (see docs/kernels.md, "Fork server").

For the warm pool of multi-user mode, :meth:`ForkingLauncher.prepare` forks
a kernel that initialises as the service, owned by no one (its ipc sockets
in the service's 0700 kernel directory, its IPython directory a private one
there, history in memory), and :meth:`ForkingLauncher.assign` later gives
it its owner: that account's confinement and environment, after which it
serves (see docs/kernels.md, "Warm pool").
"""

import os
import shutil

from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel import records
from broker.kernel.confinement import CONFINE_FUNCTION, KEPT_VARIABLES
from broker.kernel.forking import ForkedKernel, ForkServer, fork_arguments
from broker.kernel.kernelspecs import find_spec, kernel_command, kernel_environment
from broker.kernel.errors import InvalidKernelId
from broker.kernel.launcher import _KERNEL_ID, KernelLauncher


#: a pooled kernel's IPython history is kept in memory while it waits: no database is opened
#: before its owner is known; then it opens the owner's (fork_template._owners_history)
IN_MEMORY_HISTORY = "--HistoryManager.hist_file=:memory:"


class ForkingLauncher(KernelLauncher):
    """Forks ipykernel kernels from a template (per interpreter); spawns the rest."""

    log = Logger()

    def __init__(self, reactor, kernel_dir, preload=(), **options):
        super().__init__(reactor, kernel_dir, **options)
        self.preload = tuple(preload)
        self.servers = {}   # interpreter path -> ForkServer
        self._told = set()  # kernelspecs whose reason not to fork was logged

    def _launch(self, kernel_name, kernel_id, account=None):
        self._check_id(kernel_id)
        spec = find_spec(self.spec_manager, kernel_name)
        base_env = self.environ if account is None else self.confinement.environment(
            self.environ, account)
        env = kernel_environment(spec, base_env)
        env.pop("JPY_PARENT_PID", None)
        connection_file = records.connection_path(self.kernel_dir, kernel_id)
        ipc_prefix = None if account is None else records.ipc_prefix(account.home, kernel_id)
        kernel_file = connection_file if account is None else ipc_prefix + ".json"
        executable, argv = kernel_command(spec, kernel_file, env.get("PATH", os.defpath))
        try:
            arguments = fork_arguments(argv)
        except ValueError as e:
            self._say_why(kernel_name, str(e))
            return super()._launch(kernel_name, kernel_id, account)
        info = self._write_connection_file(connection_file, kernel_name, ipc_prefix)
        try:
            if account is not None:
                self._write_account_copy(connection_file, kernel_file, account)
        except BaseException:
            records.remove_launch_files(connection_file)
            raise
        request = {"fork": kernel_id, "argv": arguments, "connection_file": kernel_file,
                   "marker": connection_file,
                   "log": records.log_path(self.kernel_dir, kernel_id),
                   "cwd": self.cwd, "env": env,
                   "confine": None if account is None else self.confinement.arguments(account)}
        d = self.server_for(executable, spec, confined=account is not None).fork(request)
        d.addCallbacks(lambda answer: self._forked(answer, kernel_id, kernel_name, spec, info,
                                                   connection_file, executable),
                       lambda failure: self._not_forked(failure, connection_file))
        return d

    # -- the warm pool of multi-user mode ----------------------------------------

    def prepare(self, kernel_name, kernel_id):
        """A pooled kernel of multi-user mode: forked and initialised as the service, owned by no one.

        A Deferred of its ForkedKernel, once it has initialised (sockets bound,
        shell made); it does not serve until :meth:`assign` gives it an owner.
        """
        return defer.maybeDeferred(self._prepare, kernel_name, kernel_id)

    def _prepare(self, kernel_name, kernel_id):
        self._check_id(kernel_id)
        spec = find_spec(self.spec_manager, kernel_name)
        base = {name: self.environ[name] for name in KEPT_VARIABLES if name in self.environ}
        connection_file = records.connection_path(self.kernel_dir, kernel_id)
        ipc_prefix = records.ipc_prefix(self.kernel_dir, kernel_id)
        private_dir = ipc_prefix + ".ipython"
        env = kernel_environment(spec, {**base, "HOME": private_dir, "IPYTHONDIR": private_dir})
        env.pop("JPY_PARENT_PID", None)
        executable, argv = kernel_command(spec, connection_file, env.get("PATH", os.defpath))
        arguments = fork_arguments(argv)
        info = self._write_connection_file(connection_file, kernel_name, ipc_prefix)
        os.mkdir(private_dir, 0o700)
        request = {"prepare": kernel_id, "argv": [*arguments, IN_MEMORY_HISTORY],
                   "connection_file": connection_file, "marker": connection_file,
                   "log": records.log_path(self.kernel_dir, kernel_id), "cwd": private_dir,
                   "env": env}
        d = self.server_for(executable, spec, confined=True).fork(request)
        d.addCallbacks(
            lambda answer: self._forked(answer, kernel_id, kernel_name, spec, info,
                                        connection_file, executable, private_dir),
            lambda failure: self._not_prepared(failure, connection_file, private_dir))
        return d

    def _not_prepared(self, failure, connection_file, private_dir):
        shutil.rmtree(private_dir, ignore_errors=True)
        return self._not_forked(failure, connection_file)

    def assign(self, kernel, owner):
        """Give a prepared kernel (from :meth:`prepare`) its owner's account: it confines itself and serves.

        A Deferred of the same kernel once the template has passed the owner on;
        the caller proves it ready as any launched kernel.
        """
        d = self.accounts.account_for(owner)
        d.addCallback(self._assign, kernel)
        return d

    def _assign(self, account, kernel):
        spec = find_spec(self.spec_manager, kernel.kernel_name)
        env = kernel_environment(spec, self.confinement.environment(self.environ, account))
        env.pop("JPY_PARENT_PID", None)
        request = {"assign": kernel.kernel_id, "confine": self.confinement.arguments(account),
                   "env": env}
        d = self.servers[kernel.executable].fork(request)
        d.addCallback(lambda answer: self._assigned(kernel, account))
        return d

    def _assigned(self, kernel, account):
        kernel.remove_private_dir()
        self.log.info("pooled kernel {kernel_id} now runs as {account}", kernel_id=kernel.kernel_id,
                      account=account.name)
        return kernel

    def _say_why(self, kernel_name, why):
        if kernel_name not in self._told:
            self._told.add(kernel_name)
            self.log.info("kernelspec {kernel_name} is spawned, not forked: {why}",
                          kernel_name=kernel_name, why=why)

    def _forked(self, answer, kernel_id, kernel_name, spec, info, connection_file, executable,
                private_dir=None):
        kernel = ForkedKernel(kernel_id, kernel_name, info, connection_file, answer["pid"],
                              answer.get("start_time"), self.reactor,
                              interrupt_mode=getattr(spec, "interrupt_mode", None) or "signal",
                              log_cap=self._log_cap(kernel_id), executable=executable,
                              private_dir=private_dir)
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

    def server_for(self, executable, spec, confined=False):
        """The ForkServer of *executable*, started the first time it is needed.

        Confined (multi-user mode), the template runs as the service's account
        with the kept variables only (no user's HOME), without the user site
        directory (``-s``), in ``/`` (``python -c`` puts its working directory
        first on sys.path: the service's could be one a student can write to),
        and gets the source of ``confine`` to run in each child.
        """
        server = self.servers.get(executable)
        if server is None:
            base = {name: self.environ[name] for name in KEPT_VARIABLES if name in self.environ}
            env = kernel_environment(spec, base if confined else self.environ)
            env.pop("JPY_PARENT_PID", None)
            server = self.servers[executable] = ForkServer(
                self.reactor, executable, env, self.preload,
                confine_source=CONFINE_FUNCTION if confined else None,
                python_flags=("-s",) if confined else (), cwd="/" if confined else None)
            server.start().addErrback(lambda f: None)
        return server

    def start_templates(self, kernel_names):
        """Start the templates of *kernel_names* now (not at the first fork); fires when all are ready."""
        ready = []
        for name in kernel_names:
            try:
                spec = find_spec(self.spec_manager, name)
                executable, argv = kernel_command(spec, "unused.json",
                                                  self.environ.get("PATH", os.defpath))
                fork_arguments(argv)
            except Exception as e:  # noqa: BLE001 - such a kernelspec is spawned; say why at its launch
                self.log.info("no fork template for {kernel_name}: {why}", kernel_name=name, why=e)
                continue
            ready.append(self.server_for(executable, spec, self.accounts is not None).ready)
        return defer.DeferredList(ready, consumeErrors=True)

    def stop(self):
        """Stop every template (their kernels are not touched); fires when all are gone."""
        return defer.DeferredList([s.stop() for s in self.servers.values()], consumeErrors=True)
