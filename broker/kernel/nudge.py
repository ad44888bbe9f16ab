"""The iopub slow-joiner handshake (Jupyter Server's ``nudge``), with the clock passed in.

A ZeroMQ SUB socket receives nothing until its subscription has reached the
kernel's PUB socket, and nothing tells the client when that happened: output
of the first request could be lost. So, as Jupyter Server does, send
``kernel_info_request`` on shell until both a ``kernel_info_reply`` has come
back on shell and some message (the ``status`` each request causes) has come
through iopub. Then iopub is known to work. The first request usually reaches
a kernel that is just up before the subscription does, so its ``status`` is
lost: the next ones follow after :data:`FIRST_INTERVAL` seconds, then twice as
long each time up to *interval*, so a fresh kernel is proven ready a few tens
of milliseconds after it serves (not half a second later), for a few more
``kernel_info`` requests, each about a millisecond of the kernel's time.
The requests go on shell, or on control (*channel*) to reach a kernel that may
be busy running code (a re-attached one).

:class:`IOPubNudge` is fed every incoming message by the channels and tells
them which ones it consumed (the replies to its own requests). Further
*conditions* (names such as ``"handshake on stdin"``) can be required as well;
the channels report each with :meth:`IOPubNudge.condition_met`.
"""

from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel.errors import KernelNotReady

#: seconds before the second kernel_info request; each later one waits twice as long, up to *interval*
FIRST_INTERVAL = 0.01


class IOPubNudge:
    """One handshake: its ``deferred`` fires with the ``kernel_info_reply`` content."""

    log = Logger()

    def __init__(self, clock, send_request, timeout=30.0, interval=0.5, kernel_id=None,
                 conditions=(), channel="shell"):
        """*send_request()* sends one ``kernel_info_request`` on *channel*, returning its message dict."""
        self.clock = clock
        self.send_request = send_request
        self.timeout = timeout
        self.interval = interval
        self._wait = min(FIRST_INTERVAL, interval)
        self.kernel_id = kernel_id
        self.channel = channel
        self.request_ids = set()
        self.reply = None
        self.iopub_seen = False
        self.conditions = set(conditions)
        self.attempts = 0
        self.deferred = defer.Deferred(lambda _d: self._stop())
        self._next_request = None
        self._deadline = None

    def start(self):
        """Send the first request; return :attr:`deferred`."""
        self._deadline = self.clock.callLater(self.timeout, self._give_up)
        self._request()
        return self.deferred

    def message_received(self, channel, msg):
        """Note *msg*; return True when it is the reply to one of this nudge's requests."""
        if channel == "iopub":
            self.iopub_seen = True
            self._finish_if_ready()
            return False
        if msg.get("parent_header", {}).get("msg_id") not in self.request_ids:
            return False
        self.request_ids.discard(msg["parent_header"]["msg_id"])
        if channel == self.channel and self.reply is None:
            self.reply = msg["content"]
            self._finish_if_ready()
        return True

    def condition_met(self, name):
        """Note that condition *name* now holds."""
        self.conditions.discard(name)
        self._finish_if_ready()

    def fail(self, reason):
        """Give up at once with *reason* (an exception), e.g. when the channels close."""
        if not self.deferred.called:
            self._stop()
            self.deferred.errback(reason)

    @property
    def done(self):
        return self.deferred.called

    def _request(self):
        self._next_request = None
        if self.done:
            return
        self.attempts += 1
        try:
            self.request_ids.add(self.send_request()["msg_id"])
        except Exception as e:
            self.fail(e)
            return
        self.log.debug("nudge {attempts} sent to kernel {kernel_id}",
                       attempts=self.attempts, kernel_id=self.kernel_id)
        self._next_request = self.clock.callLater(self._wait, self._request)
        self._wait = min(self._wait * 2, self.interval)

    def _finish_if_ready(self):
        if self.reply is not None and self.iopub_seen and not self.conditions and not self.done:
            self._stop()
            self.log.debug("kernel {kernel_id} ready after {attempts} nudges",
                           kernel_id=self.kernel_id, attempts=self.attempts)
            self.deferred.callback(self.reply)

    def _give_up(self):
        self._deadline = None
        missing = []
        if self.reply is None:
            missing.append(f"no kernel_info_reply on {self.channel}")
        if not self.iopub_seen:
            missing.append("no message on iopub")
        missing.extend(f"no {name}" for name in sorted(self.conditions))
        self.fail(KernelNotReady(
            f"kernel {self.kernel_id} not ready after {self.timeout:g} s and "
            f"{self.attempts} kernel_info requests: {' and '.join(missing)}"
        ))

    def _stop(self):
        for call in (self._next_request, self._deadline):
            if call is not None and call.active():
                call.cancel()
        self._next_request = self._deadline = None
