"""The fork server (``--kernel-factory fork``): Python kernels forked from a warm template.

:class:`ForkServer` runs one template process (:mod:`broker.kernel.fork_template`,
run with the kernelspec's interpreter) that has imported ipykernel, IPython and
the ``--preload`` modules, and asks it over a pipe to fork a kernel for a
connection file. :class:`ForkedKernel` is the launched kernel it gives back:
an :class:`~broker.kernel.adoption.AdoptedKernel` (the kernel is the
template's child, not ours), whose ``exited`` fires as soon as the template
reports the exit. While its template runs, nothing polls a forked kernel (a
thousand kernels polled each second would be a thousand ``/proc`` reads a
second for nothing: the template, their parent, reaps each and says so);
once the template is gone, each of its kernels is polled until a poll finds
the process gone (its pid and start time no longer name a live process).
Signals go to the kernel's pid (``kill(2)``), so interrupt (SIGINT) works as
for any kernel.

The same pipe carries the warm pool's ``prepare`` and ``assign`` requests of
multi-user mode (:meth:`ForkServer.fork` sends any request; each is answered
by kernel id).

If the template dies, forks waiting for it fail (the launch fails as a
kernel that did not start) and it is started again after
:data:`RESTART_DELAY` seconds; kernels it forked run on, watched by their poll.
"""

import json
import os
import shutil
import signal

from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from broker.errors import Condition, KERNEL_START_FAILED
from broker.kernel.adoption import POLL_INTERVAL, AdoptedKernel
from broker.kernel.launcher import KernelExit
from broker.kernel import records

#: the template program's source (run as ``python -c``: nothing of broker is imported)
TEMPLATE_SOURCE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "fork_template.py")
#: seconds before a template that died is started again
RESTART_DELAY = 1.0
#: seconds a stopping template may take to exit after its pipe closes, before SIGKILL
STOP_GRACE = 5.0
#: the longest line read from the template's pipes (its answers are far shorter)
MAX_LINE = 65536
#: the module argv of the kernelspecs the fork server can start (``python -m MODULE``)
IPYKERNEL_MODULES = ("ipykernel_launcher", "ipykernel")


#: the requests to the template, and its answers to them (each names the kernel id it is about)
REQUESTS = ("fork", "prepare", "assign")
ANSWERS = ("forked", "prepared", "assigned", "failed")


def _subject(message, keys=REQUESTS):
    """The kernel id a template request (or, with *keys* ANSWERS, an answer) is about."""
    return next((message[key] for key in keys if key in message), None)


class ForkFailed(Condition):
    """The template could not fork the kernel (it died, or refused: what it said is the message)."""

    uri = KERNEL_START_FAILED


def fork_arguments(argv):
    """IPKernelApp's arguments of an ipykernel kernelspec's *argv*; ValueError saying why not one."""
    if len(argv) < 3 or argv[1] != "-m" or argv[2] not in IPYKERNEL_MODULES:
        raise ValueError(f"its argv {argv!r} is not 'PYTHON -m ipykernel_launcher ...'")
    return argv[3:]


def process_start_time(pid):
    """The start time of process *pid* in clock ticks, or None if it is gone or not readable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == b"Z" else int(fields[19])


class ForkedKernel(AdoptedKernel):
    """A kernel forked by the template: watched by the template's exit reports and by a poll."""

    def __init__(self, kernel_id, kernel_name, connection_info, connection_file, pid, start_time,
                 clock, interrupt_mode="signal", poll_interval=POLL_INTERVAL, log_cap=None,
                 executable=None, private_dir=None):
        self.start_time = start_time
        # not polled while its template reports its exit (ForkServer.watch)
        #: the interpreter whose template forked it
        self.executable = executable
        #: a pooled kernel's IPython directory while it waited for its owner (the service's)
        self.private_dir = private_dir
        super().__init__(kernel_id, kernel_name, connection_info, connection_file, pid, clock,
                         interrupt_mode=interrupt_mode, poll_interval=poll_interval,
                         running=self._same_process, log_cap=log_cap, poll=False)

    def _same_process(self, pid, connection_file):
        started = process_start_time(pid)
        return started is not None and (self.start_time is None or started == self.start_time)

    def reported_exit(self, exit_code, signal):
        """The template reaped the kernel: ``exited`` fires with how it ended."""
        if not self.exited.called:
            self.stop_watching()
            self.exited.callback(KernelExit(exit_code, signal))

    def remove_files(self):
        """Its launch files, and the directory it used while it waited in the pool."""
        self.remove_private_dir()
        super().remove_files()

    def remove_private_dir(self):
        if self.private_dir is not None:
            shutil.rmtree(self.private_dir, ignore_errors=True)

    def output_tail(self):
        """The last lines the kernel printed (its ``.log``), for saying why it failed."""
        return records.output_tail(self.connection_file)


class TemplateProtocol(protocol.ProcessProtocol):
    """The template's pipes: JSON answers on stdout to the server, stderr lines to our log."""

    log = Logger()

    def __init__(self, server):
        self.server = server
        self._buffer = b""
        self._err = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        if len(self._buffer) > MAX_LINE:
            self.log.warn("fork template wrote a line longer than {most} bytes: dropped",
                          most=MAX_LINE)
            self._buffer = b""
        for line in lines:
            try:
                answer = json.loads(line)
            except ValueError:
                self.log.warn("fork template said {line!r}", line=line[:200])
                continue
            self.server.answer(answer)

    def errReceived(self, data):
        *lines, self._err = (self._err + data).split(b"\n")
        if len(self._err) > MAX_LINE:
            lines, self._err = [*lines, self._err[:MAX_LINE]], b""
        for line in lines:
            self.log.warn("fork template: {line}", line=line.decode("utf-8", "replace"))

    def processEnded(self, reason):
        self.server.template_ended(self, reason)
        self.ended.callback(None)


class ForkServer:
    """One template process for one interpreter; ``fork(...)`` asks it for a kernel."""

    log = Logger()

    def __init__(self, reactor, executable, env, preload=(), confine_source=None,
                 python_flags=(), cwd=None):
        self.reactor = reactor
        #: the template's working directory (None: the service's); ``python -c`` puts it
        #: first on the template's sys.path
        self.cwd = cwd
        self.python_flags = tuple(python_flags)
        self.executable = executable
        self.env = dict(env)
        self.preload = tuple(preload)
        self.confine_source = confine_source
        self.template = None   # its TemplateProtocol while it runs
        self.ready = None      # Deferred firing with the template's ready message
        self.info = None       # that message: {"ready": pid, "preloaded", "checks"}
        self.pending = {}      # kernel_id -> Deferred of the fork's answer
        self.kernels = {}      # pid -> ForkedKernel, while it runs
        self.stopping = False
        self._restart = None

    def start(self):
        """Start the template; return a Deferred that fires when it has imported everything."""
        with open(TEMPLATE_SOURCE_PATH) as f:
            source = f.read()
        env = dict(self.env)
        if self.confine_source:
            env["WEBKERNEL_CONFINE_SOURCE"] = self.confine_source
        args = [self.executable, *self.python_flags, "-c", source]
        for name in self.preload:
            args += ["--preload", name]
        self.template = TemplateProtocol(self)
        self.ready = defer.Deferred()
        self.reactor.spawnProcess(self.template, self.executable, args, env=env, path=self.cwd,
                                  childFDs={0: "w", 1: "r", 2: "r"})
        self.log.info("fork template starting ({executable}, preload: {preload})",
                      executable=self.executable, preload=", ".join(self.preload) or "nothing")
        return self.ready

    @property
    def pid(self):
        return self.info["ready"] if self.info else None

    def fork(self, request):
        """Ask the template (*request*: a ``fork``, ``prepare`` or ``assign`` message); a Deferred of the answer."""
        if self.stopping:
            return defer.fail(ForkFailed("the fork server is stopping"))
        if self.template is None:
            self.start()
        key = _subject(request)
        d = defer.Deferred(lambda d: self.pending.pop(key, None))  # canceled: forgotten
        self.pending[key] = d
        self.ready.addCallback(self._send, request)
        self.ready.addErrback(lambda f: None)
        return d

    def _send(self, info, request):
        if self.template is not None and _subject(request) in self.pending:
            self.template.transport.write(json.dumps(request).encode("utf-8") + b"\n")
        return info

    def watch(self, kernel):
        """Report *kernel*'s exit (a ForkedKernel) when the template says it ended; poll it if the template is gone."""
        if self.template is None:
            kernel.watch_by_polling()
            return
        self.kernels[kernel.pid] = kernel
        kernel.exited.addBoth(lambda result: (self.kernels.pop(kernel.pid, None), result)[1])

    # -- the template's answers ------------------------------------------------------

    def answer(self, message):
        if "ready" in message:
            self._became_ready(message)
        elif any(key in message for key in ANSWERS):
            d = self.pending.pop(_subject(message, ANSWERS), None)
            if d is None and "prepared" in message:
                self._abandoned(message)
            elif d is not None and "failed" not in message:
                d.callback(message)
            elif d is not None:
                d.errback(ForkFailed(f"the fork template refused: {message.get('error')}"))
        elif "exited" in message:
            kernel = self.kernels.pop(message["exited"], None)
            if kernel is not None:
                kernel.reported_exit(message.get("exit_code"), message.get("signal"))

    def _abandoned(self, message):
        """A pooled child prepared after its request was given up (timed out): it must not wait on."""
        self.log.warn("pooled kernel {kernel_id} initialised after it was given up: killed",
                      kernel_id=message["prepared"])
        try:
            os.kill(message["pid"], signal.SIGKILL)  # the template's unreaped child: its pid is its own
        except OSError:
            pass

    def _became_ready(self, message):
        self.info = message
        self.log.info("fork template ready, pid {pid}; preloaded: {preloaded}; "
                      "before forking: {checks}", pid=message["ready"],
                      preloaded=", ".join(message.get("preloaded", ())) or "nothing",
                      checks=message.get("checks"))
        if not self.ready.called:
            self.ready.callback(message)

    def template_ended(self, template, reason):
        if template is not self.template:
            return
        self.template, self.info = None, None
        orphans, self.kernels = self.kernels, {}
        for kernel in orphans.values():  # no one reports their exits now: poll them
            kernel.watch_by_polling()
        status = KernelExit.from_reason(reason)
        pending, self.pending = self.pending, {}
        for d in pending.values():
            d.errback(ForkFailed(f"the fork template exited ({status})"))
        if not self.ready.called:
            self.ready.errback(ForkFailed(f"the fork template exited while starting ({status})"))
        if self.stopping:
            return
        self.log.warn("fork template exited ({status}); starting it again in {delay} s",
                      status=str(status), delay=RESTART_DELAY)
        self._restart = self.reactor.callLater(RESTART_DELAY, self._start_again)

    def _start_again(self):
        self._restart = None
        if not self.stopping and self.template is None:
            self.start().addErrback(lambda f: None)

    # -- stopping -----------------------------------------------------------------------

    def stop(self):
        """Close the template's pipe (it exits; kernels it forked are not touched); fires when it is gone."""
        self.stopping = True
        if self._restart is not None and self._restart.active():
            self._restart.cancel()
        template = self.template
        if template is None:
            return defer.succeed(None)
        template.transport.closeStdin()
        timer = self.reactor.callLater(STOP_GRACE, self._kill, template)
        template.ended.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
        return template.ended

    def _kill(self, template):
        try:
            template.transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass
