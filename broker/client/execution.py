"""One ``execute`` of the client: its progress, its input, and following it past a dropped connection.

While the connection holds, outputs arrive as the call's progressive results
and the final result is the service's. When the connection drops, the kernel
goes on running the code (the router does not interrupt a caller that left),
and with reconnection on the execution is *followed*: once the client has a
new session, an :class:`~broker.client.feed.OutputFeed` on the kernel's
topics and history gives every output of this execution not yet delivered,
in order, once each (matched by ``parent_msg_id``); when the kernel reports
``status: idle`` for it, the final result is built from those outputs and
``reply(msg_id)``.

The execution's msg_id is the ``parent_msg_id`` of its first progressive
output. If the connection dropped before any came (no progress asked for, or
the request waited behind another cell), it is the first ``execute_input``
caused by the old session with the same code that no other execution of this
client has claimed. If none comes while the kernel is idle and quiet for
``LOST_WAIT`` seconds, the request was lost (with the connection, or with a
kernel that died before running it): ConnectionLost.
"""

from twisted.internet import defer
from twisted.python.failure import Failure

from broker.client.errors import ConnectionLost, KernelDied, Timeout
from broker.client.feed import OutputFeed, event_output
from broker.kernel.results import ResultOutputs, seq_range

#: seconds the client waits past a call's timeout for the service's own timeout error
GRACE = 5.0
#: seconds of an idle, quiet kernel after which an execution not found was never run
LOST_WAIT = 2.5


class Execution:
    """One ``execute`` call: progressive outputs, input requests, the callbacks' errors."""

    def __init__(self, kernel, on_output, on_input):
        self.kernel = kernel
        self.on_output = on_output
        self.on_input = on_input
        self.error = None
        self.call = None
        self.code = None
        self.session_id = None
        self.msg_id = None
        self.last_seq = None
        self.idle = False
        self.deadline = None
        self.since = kernel.last_seq
        self.results = ResultOutputs()

    def start(self, code, timeout, options):
        self.code = code
        client = self.kernel.client
        seconds = client.timeout if timeout is None else timeout
        if seconds:
            self.deadline = client.reactor.seconds() + seconds + GRACE
        wants_progress = self.on_output is not None or self.on_input is not None
        self.call = client.keeper.joined()
        self.call.addCallback(self._send, timeout, options, wants_progress)
        self.call.addBoth(self._follow_if_cut)
        return self.call.addBoth(self.finish)

    def _send(self, session, timeout, options, wants_progress):
        self.session_id = session.session_id
        return self.kernel.call("execute", self.code, timeout=timeout,
                                on_progress=self.progress if wants_progress else None, **options)

    def _follow_if_cut(self, result):
        cut = isinstance(result, Failure) and result.check(ConnectionLost)
        if cut and self.error is None and self.session_id is not None and self.kernel.client.keeper.reconnects:
            return Follower(self).follow()
        return result

    def progress(self, *args, **kwargs):
        self.take(event_output(args, kwargs))

    def take(self, output):
        """One output of this execution (or a gap notice): remember it, hand it to the callbacks."""
        if self.error is not None:
            return
        self._note(output)
        if output.get("msg_type") == "input_request":
            return self.answer(output.get("content") or {})
        if self.on_output is not None:
            try:
                self.on_output(output)
            except Exception as e:
                self.failed(e)

    def _note(self, output):
        self.results.add(output)
        if output.get("seq") is None:
            return
        self.kernel.saw(output)
        self.last_seq = seq_range(output)[1]
        if self.msg_id is None and output.get("parent_msg_id"):
            self.msg_id = output["parent_msg_id"]
            self.kernel.claim(self.msg_id)
        if output.get("msg_type") == "status" and (output.get("content") or {}).get("execution_state") == "idle":
            self.idle = True

    def answer(self, content):
        if self.on_input is None:
            return self.failed(RuntimeError("the code asked for input, but execute() has no on_input"))
        d = defer.maybeDeferred(self.on_input, content.get("prompt", ""), bool(content.get("password")))
        d.addCallback(self.kernel.input)
        d.addErrback(lambda f: self.failed(f.value))

    def failed(self, exception):
        """A callback raised: cancel the call (the code is interrupted if it still runs)."""
        if self.error is None:
            self.error = exception
            self.call.cancel()

    def finish(self, result):
        if self.error is not None:
            raise self.error
        if isinstance(result, dict) and result.get("msg_id"):
            self.kernel.claim(result["msg_id"])
        return result


class Follower:
    """An execution whose call a dropped connection cut, followed on the kernel's output to its end."""

    def __init__(self, execution):
        self.execution = execution
        self.kernel = execution.kernel
        self.clock = execution.kernel.client.reactor
        self.done = defer.Deferred(self._canceled)
        self.feed = None
        self.candidates = {}  # parent msg_id -> outputs the old session caused, until ours is known
        self._deadline = None
        self._quiet = None

    def follow(self):
        """A Deferred of the final result (or the failure) of the execution."""
        execution = self.execution
        if execution.deadline is not None:
            left = max(0.0, execution.deadline - self.clock.seconds())
            self._deadline = self.clock.callLater(left, self._timed_out)
        if execution.idle:  # it finished before the drop: only the reply is missing
            self._finish()
        else:
            known = execution.msg_id is not None
            self.feed = OutputFeed(self.kernel, self._output,
                                   execution.last_seq if known else execution.since, self._end)
            self.feed.start().addCallbacks(self._caught_up, self._end)
        return self.done

    def _caught_up(self, _):
        if self.execution.msg_id is None:
            self._wait_quietly()

    def _output(self, output):
        execution = self.execution
        if self.done.called:
            return
        content = output.get("content") or {}
        if output.get("lost"):
            return execution.take(output)  # a gap notice: this execution's output may be in it
        if (self._running() and output.get("msg_type") == "status" and output.get("parent_msg_id") is None
                and content.get("execution_state") in ("dead", "restarting")):
            return self._end(Failure(KernelDied(
                f"kernel {self.kernel.id} is {content['execution_state']}"
                + (f" ({content['reason']})" if content.get("reason") else ""))))
        if execution.msg_id is None:
            return self._identify(output)
        if output.get("parent_msg_id") == execution.msg_id:
            self._ours(output)

    def _ours(self, output):
        self.execution.take(output)
        if self.execution.idle and not self.done.called:
            self._finish()

    def _identify(self, output):
        """Is *output* the start of our execution? (caused by the old session, with our code)"""
        execution = self.execution
        self._wait_quietly()
        parent = output.get("parent_msg_id")
        caller = output.get("caller") or {}
        if parent is None or caller.get("session") != execution.session_id or self.kernel.claimed(parent):
            return
        self.candidates.setdefault(parent, []).append(output)
        if output.get("msg_type") == "execute_input" and (output.get("content") or {}).get("code") == execution.code:
            execution.msg_id = parent
            self.kernel.claim(parent)
            ours, self.candidates = self.candidates[parent], {}
            self._stop_quiet()
            for found in ours:
                if self.done.called or self.execution.error is not None:
                    break
                self._ours(found)

    # -- a request that never reached the kernel -----------------------------------------------

    def _wait_quietly(self):
        self._stop_quiet()
        if self.execution.msg_id is None and not self.done.called:
            self._quiet = self.clock.callLater(LOST_WAIT, self._quiet_for_long)

    def _stop_quiet(self):
        if self._quiet is not None and self._quiet.active():
            self._quiet.cancel()
        self._quiet = None

    def _quiet_for_long(self):
        self._quiet = None
        d = self.kernel.client.kernels()
        d.addCallbacks(self._idle_without_it, lambda _: self._wait_quietly())

    def _idle_without_it(self, models):
        states = [m.get("execution_state") for m in models if m.get("id") == self.kernel.id]
        if self.execution.msg_id is not None or self.done.called or self._quiet is not None:
            return
        if states == ["idle"]:
            return self._end(Failure(ConnectionLost(
                "the execute request was lost with the connection: "
                "the kernel is idle and did not run it")))
        self._wait_quietly()

    # -- the end ----------------------------------------------------------------------------

    def _finish(self):
        self._stop_feed()
        d = self.kernel.reply(self.execution.msg_id)
        d.addCallbacks(self._replied, self._reply_failed)

    def _reply_failed(self, failure):
        if failure.check(ConnectionLost) and self.kernel.client.keeper.reconnects:
            return self._finish()  # again, on the next session
        self._end(failure)

    def _replied(self, entry):
        results = self.execution.results
        final = {"status": entry["status"], "execution_count": entry["execution_count"],
                 "reply": entry["reply"], "outputs": results.outputs, "omitted": results.omitted,
                 "msg_id": self.execution.msg_id}
        if entry.get("truncated"):
            final["reply_truncated"] = True
        self._end(final)

    def _timed_out(self):
        self._deadline = None
        timeout = Failure(Timeout("the execution did not finish within its timeout (it is interrupted)"))
        if self._running():
            self.kernel.interrupt().addBoth(lambda _: self._end(timeout))
        else:
            self._end(timeout)

    def _running(self):
        return self.execution.msg_id is not None and not self.execution.idle

    def _canceled(self, _):
        self._cleanup()
        if self._running():
            self.kernel.interrupt().addErrback(lambda _: None)

    def _end(self, result):
        if self.done.called:
            return
        self._cleanup()
        self.done.callback(result)

    def _cleanup(self):
        self._stop_quiet()
        self._stop_feed()
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _stop_feed(self):
        if self.feed is not None:
            self.feed.stop()
            self.feed = None
