"""One kernel's life: launch, readiness, heartbeat, death, restart, shutdown.

A :class:`KernelSupervisor` owns a kernel's process (through an
:class:`~broker.kernel.interfaces.IKernelLauncher`) and its channels (made by
a factory), and keeps its :class:`~broker.kernel.session.KernelConversation`
connected to the current ones across restarts. It notices death two ways
(process exit, missed heartbeats), fails pending requests, and restarts the
kernel under the same id up to a limit. Time is the injected clock.

It can also *adopt* a kernel an earlier service started
(:mod:`broker.kernel.adoption`): the process is already running, readiness is
asked on the control channel (a busy kernel answers there), and death is the
adopted process's poll or missed heartbeats. It keeps the kernel's record
file (:mod:`broker.kernel.records`) current: the pid of each launch, and
removal once the kernel is gone for good; ``detach`` leaves a kernel running
for the next service.

It owns the kernel's state (``starting``, ``idle``, ``busy``, ``restarting``,
``dead``) and the reason of a death: :meth:`KernelSupervisor.change_state` is
the one place it changes, and it tells the host (``on_event``). The
conversation reports the kernel's own ``busy``/``idle`` (its iopub status) to
:meth:`~KernelSupervisor.execution_state_reported`; everyone else asks.
"""

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from broker import errors
from broker.kernel.heartbeat import HeartbeatMonitor
from broker.kernel.records import NoRecordFile


class KernelDied(errors.Condition):
    """The kernel process exited or stopped answering heartbeats."""

    uri = errors.KERNEL_DIED


class KernelStartFailed(errors.Condition):
    """The kernel did not become ready (timed out, or exited while starting)."""

    uri = errors.KERNEL_START_FAILED


class KernelShutDown(errors.Condition):
    """The kernel was shut down (or restarted) while the request was pending."""

    uri = errors.KERNEL_DIED


#: what a kernel prints when a port chosen for it was taken before it could bind it
#: (ports are picked free, then handed to the kernel: another socket can win the race)
PORT_TAKEN = "Address already in use"
#: launches with fresh ports after PORT_TAKEN, before the start counts as failed
PORT_RETRIES = 3


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


class KernelSupervisor:
    """Keeps one kernel running, or says why it is not."""

    log = Logger()

    def __init__(self, kernel_id, kernel_name, conversation, launcher, channels_factory, clock,
                 on_event, ready_timeout=60.0, max_restarts=3, shutdown_grace=5.0,
                 heartbeat_interval=3.0, record_file=None, owner=None):
        self.kernel_id, self.kernel_name = kernel_id, kernel_name
        self.owner = owner  # whose account the launcher runs it as (multi-user mode)
        self.conversation = conversation
        self.launcher = launcher
        self.channels_factory = channels_factory
        self.clock = clock
        self.on_event = on_event  # on_event(event_name, reason=None)
        conversation.on_state = self.execution_state_reported
        self.ready_timeout = ready_timeout
        self.max_restarts = max_restarts
        self.shutdown_grace = shutdown_grace
        self.heartbeat_interval = heartbeat_interval
        self.record_file = record_file if record_file is not None else NoRecordFile()
        self.launched = None
        self.kernel_info = None
        self.restarts = 0
        self.state = "starting"
        self.reason = None
        self._heartbeat = None
        self._stopping = False
        self._ready = None  # Deferred of the current start
        self._port_retries = 0

    # -- state --------------------------------------------------------------------

    def change_state(self, state, reason=None, event=None):
        """Set the kernel's state (and the reason, if given); then tell the host *event*, if any."""
        self.state = state
        if reason is not None:
            self.reason = reason
        if event is not None:
            self.on_event(event, reason)

    def execution_state_reported(self, state):
        """The kernel said it is ``busy`` or ``idle`` (iopub status): a change is event ``state``."""
        if state in ("busy", "idle") and self.state in ("busy", "idle") and state != self.state:
            self.change_state(state, event="state")

    # -- start --------------------------------------------------------------------

    def start(self):
        """Launch the kernel; a Deferred fires once it is ready."""
        if self.state != "restarting":
            self.change_state("starting")
        self._stopping = False
        self._ready = defer.Deferred()
        self._port_retries = 0
        self._launch()
        return self._ready

    def _launch(self):
        d = self.launcher.launch(self.kernel_name, self.kernel_id, owner=self.owner)
        d.addCallback(self._launched)
        d.addErrback(self._start_failed)

    def adopt(self, launched):
        """Take over a running kernel (an AdoptedKernel); a Deferred fires once it answers."""
        self.change_state("starting")
        self._stopping = False
        self._ready = defer.Deferred()
        self._launched(launched, nudge_channel="control")
        return self._ready

    def take_over(self, warm):
        """Take a kernel the warm pool launched and proved ready (a WarmKernel): ready at once.

        Its channels come with it (their messages now go to this kernel's
        conversation); its ``kernel_info_reply`` is the one of the pool's proof.
        A kernel prepared for multi-user mode (no channels) is first given its
        owner (``launcher.assign``), then connected to and proven as any launch.
        """
        self.change_state("starting")
        self._stopping = False
        self._ready = defer.Deferred()
        self._watch(warm.launched)
        if warm.channels is None:  # prepared for multi-user mode: its owner first
            d = self.launcher.assign(warm.launched, self.owner)
            d.addCallbacks(self._open_channels, self._start_failed)
            return self._ready
        warm.relay.target = self.conversation.message_received
        self.conversation.channels = warm.channels
        self._became_ready(warm.kernel_info)
        return self._ready

    def _watch(self, launched):
        self.launched = launched
        self.record_file.launched(launched.pid)
        launched.exited.addBoth(self._exited, launched)

    def _launched(self, launched, nudge_channel="shell"):
        self._watch(launched)
        self._open_channels(launched, nudge_channel)

    def _open_channels(self, launched, nudge_channel="shell"):
        """Connect to *launched* and prove it ready (its nudge)."""
        if launched is not self.launched or self._ready is None or self._ready.called:
            return  # given up meanwhile
        channels = self.channels_factory(
            launched.connection_info, self.conversation.message_received, self.kernel_id)
        self.conversation.channels = channels
        d = channels.nudge(timeout=self.ready_timeout, channel=nudge_channel)
        # a launch given up for another (a port clash) must not end the start
        d.addCallbacks(lambda info: self._became_ready(info) if launched is self.launched else None,
                       lambda f: self._start_failed(f) if launched is self.launched else None)

    def _became_ready(self, kernel_info):
        if self._ready is None or self._ready.called:
            return
        self.kernel_info = kernel_info
        self.change_state("idle")
        self._heartbeat = HeartbeatMonitor(
            self.clock, self.conversation.channels.ping, self._heartbeat_lost,
            interval=self.heartbeat_interval, kernel_id=self.kernel_id)
        self._heartbeat.start()
        self._ready.callback(kernel_info)

    def _start_failed(self, failure):
        if self._ready is None or self._ready.called:
            return
        reason = f"the kernel did not become ready: {failure.getErrorMessage()}"
        # this launch is given up: its exit is not a death; closing its channels
        # fails its nudge, which must not come back here
        ready, self._ready, self._stopping = self._ready, None, True
        self._kill_quietly()
        self._close_channels()
        if self.launched is not None:
            self.launched.remove_files()
        if self.state != "restarting":  # a failed restart is decided by _restart_failed
            self.record_file.remove()
            self.change_state("dead", reason)  # the host says so, as it forgets the kernel
        ready.errback(Failure(KernelStartFailed(reason)))  # last: it may start a new launch

    def _launch_with_new_ports(self):
        self._port_retries += 1
        self.log.info("kernel {kernel_id}: a port chosen for it was taken before it bound it; "
                      "launching it again with new ports ({n} of {most})",
                      kernel_id=self.kernel_id, n=self._port_retries, most=PORT_RETRIES)
        given_up, self.launched = self.launched, None   # first: closing fails its nudge
        self._close_channels()
        given_up.remove_files()
        self._launch()

    # -- death and restart ---------------------------------------------------------

    def _exited(self, result, launched):
        if launched is not self.launched or self._stopping:
            return result
        self._exited_now(result)
        return result

    def _exited_now(self, result):
        status = result.getErrorMessage() if isinstance(result, Failure) else str(result)
        if self._ready is not None and not self._ready.called:
            output = getattr(self.launched, "output_tail", lambda: "")()
            if PORT_TAKEN in output and self._port_retries < PORT_RETRIES:
                return self._launch_with_new_ports()
            if output:
                self.log.warn("kernel {kernel_id} exited while starting; its last output:\n{output}",
                              kernel_id=self.kernel_id, output=output)
            said = _last_line(output)
            self._start_failed(Failure(KernelStartFailed(
                f"the kernel process exited while starting ({status})"
                + (f": {said}" if said else ""))))
            return
        self._died(f"the kernel process exited ({status})")

    def _heartbeat_lost(self):
        if not self._stopping and self.state not in ("dead", "restarting"):
            hung = self.launched  # _died relaunches at once: kill this one, not its successor
            self._died("the kernel stopped answering heartbeats")
            self._kill_quietly(hung)

    def _died(self, reason):
        self.log.warn("kernel {kernel_id} died: {reason}", kernel_id=self.kernel_id, reason=reason)
        self._stop_heartbeat()
        self.conversation.fail_all(Failure(KernelDied(reason)))
        self.change_state("dead", reason, event="dead")
        if self.restarts < self.max_restarts:
            self.restarts += 1
            self._relaunch(automatic=True)
        else:
            self.log.warn("kernel {kernel_id} is not restarted again ({n} restarts)",
                          kernel_id=self.kernel_id, n=self.restarts)
            self._close_channels()
            if self.launched is not None:
                self.launched.remove_files()
            self.record_file.remove()

    def _relaunch(self, automatic):
        self._close_channels()
        if self.launched is not None:
            self.launched.remove_files()
        self.change_state("restarting", event="restarting")
        d = self.start()
        d.addCallbacks(lambda info: self.on_event("restarted", None),
                       lambda f: self._restart_failed(f, automatic))
        return d

    def _restart_failed(self, failure, automatic):
        if automatic:
            return self._died(failure.getErrorMessage())
        self.record_file.remove()
        self.change_state("dead", failure.getErrorMessage(), event="dead")
        return failure

    @defer.inlineCallbacks
    def restart(self):
        """Stop the kernel and start it again under the same id; fires when ready."""
        yield self._stop_process()
        self.conversation.fail_all(Failure(KernelShutDown("the kernel was restarted")))
        self._stopping = False
        yield self._relaunch(automatic=False)

    # -- interrupt and shutdown -----------------------------------------------------

    def interrupt(self):
        """Interrupt the running code (signal or message, as the kernelspec says)."""
        mode = getattr(self.launched, "interrupt_mode", "signal")
        if mode == "message":
            self.conversation.channels.send("control", "interrupt_request", {})
        else:
            self.launched.signal("INT")

    @defer.inlineCallbacks
    def shutdown(self):
        """Stop the kernel for good and remove its files; fires when the process is gone."""
        yield self._stop_process()
        self.record_file.remove()
        self.conversation.fail_all(Failure(KernelShutDown("the kernel was shut down")))
        self.change_state("dead", "shut down")

    def detach(self):
        """Let the kernel run on without us, its files kept for the next service (``--keep-kernels``)."""
        self._stopping = True
        self._stop_heartbeat()
        if self.launched is not None:
            self.launched.stop_watching()
        self._close_channels()
        self.record_file.keep(self.conversation.history.last_seq)
        self.conversation.fail_all(Failure(KernelShutDown(
            "the service stopped; the kernel runs on for the next one")))

    @defer.inlineCallbacks
    def _stop_process(self):
        self._stopping = True
        self._stop_heartbeat()
        launched = self.launched
        if launched is None:
            return
        if not launched.exited.called:
            if self.conversation.channels is not None and self.state != "dead":
                self.conversation.channels.send("control", "shutdown_request", {"restart": False})
            yield self._wait_exit(launched, self.shutdown_grace)
        if not launched.exited.called:
            launched.signal("KILL")
            yield self._wait_exit(launched, self.shutdown_grace)
        self._close_channels()
        launched.remove_files()

    def _wait_exit(self, launched, seconds):
        exited = defer.Deferred()
        launched.exited.addBoth(lambda r: (exited.called or exited.callback(None), r)[1])
        timer = self.clock.callLater(seconds, lambda: exited.called or exited.callback(None))
        exited.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
        return exited

    def _kill_quietly(self, launched=None):
        launched = self.launched if launched is None else launched
        if launched is not None and not launched.exited.called:
            launched.signal("KILL")

    def _stop_heartbeat(self):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    def _close_channels(self):
        channels, self.conversation.channels = self.conversation.channels, None
        if channels is not None:
            channels.close()
