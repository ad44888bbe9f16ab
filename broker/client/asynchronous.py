"""The Twisted-native client of the kernel API: every method returns a Deferred.

:class:`AsyncClient` calls the ``webkernel.*`` procedures of
``docs/kernels.md`` on its session; :class:`AsyncKernel` is one kernel. WAMP
errors arrive as the exceptions of :mod:`broker.client.errors`. Every call is
bounded: it carries a WAMP call ``timeout`` (which interrupts an execution on
the service's side) and the client gives up a little after that if no answer
comes at all.

A client from :func:`connect_async` reconnects by itself when its connection
drops (:mod:`broker.client.reconnect`): calls made meanwhile wait for the new
session, watches resume without losing or repeating an output
(:mod:`broker.client.feed`), and an ``execute`` in flight is followed to its
end (:mod:`broker.client.execution`). Other calls pending at the drop fail
with ConnectionLost.
"""

from collections import OrderedDict

from autobahn.wamp import types

from broker.client.errors import NoSuchKernel, NoSuchProcedure, from_failure
from broker.client.execution import GRACE, Execution
from broker.client.feed import OutputFeed
from broker.kernel.results import seq_range
from broker.client.reconnect import DEFAULT_RECONNECT_TIMEOUT, SessionKeeper
from broker.client.session import (
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    check_ping,
    open_websocket_session,
)
from broker.kernel import uris

#: seconds a call may take unless told otherwise
DEFAULT_TIMEOUT = 60.0
#: msg_ids of its executions a kernel object remembers (to tell them apart after a drop)
_CLAIMED = 1000


def payload(result):
    """A WAMP result as one value: its keyword arguments if it has any, else its one argument."""
    if isinstance(result, types.CallResult):
        if result.kwresults:
            return dict(result.kwresults)
        return result.results[0] if len(result.results) == 1 else list(result.results)
    return result


class AsyncClient:
    """A session on the service's realm, for the kernel API (Deferred-returning).

    *keeper* is the :class:`~broker.client.reconnect.SessionKeeper` that
    replaces a dropped session; without one the client never reconnects.
    """

    def __init__(self, session, reactor, timeout=DEFAULT_TIMEOUT, keeper=None):
        self.keeper = keeper if keeper is not None else SessionKeeper(session, reactor)
        self.reactor = reactor
        self.timeout = timeout

    @property
    def session(self):
        """The current WAMP session (None while reconnecting)."""
        return self.keeper.session

    @property
    def authid(self):
        """The name the client joined under (kept across reconnects)."""
        return self.keeper.authid

    def call(self, procedure, *args, timeout=None, on_progress=None, **kwargs):
        """Call *procedure*; a Deferred of its :func:`payload`.

        *timeout* (seconds) defaults to the client's; ``0`` means none. While
        the client reconnects the call waits for the new session.
        """
        seconds = self.timeout if timeout is None else timeout
        options = types.CallOptions(on_progress=on_progress,
                                    timeout=int(seconds * 1000) if seconds else None)
        d = self.keeper.joined()
        d.addCallback(lambda session: session.call(procedure, *args, options=options, **kwargs))
        if seconds:
            d.addTimeout(seconds + GRACE, self.reactor)
        return d.addCallbacks(payload, from_failure)

    def kernelspecs(self):
        """``{default, kernelspecs: {name: {name, spec}}}``."""
        return self.call(uris.KERNELSPECS)

    def start_kernel(self, kernel_name=None, timeout=None):
        """Start a kernel (of the default kernelspec unless named); an :class:`AsyncKernel` once ready."""
        named = {} if kernel_name is None else {"kernel_name": kernel_name}
        d = self.call(uris.KERNELS_START, timeout=timeout, **named)
        return d.addCallback(lambda model: AsyncKernel(self, model))

    def kernels(self):
        """Models of the kernels this client may see."""
        return self.call(uris.KERNELS_LIST)

    def kernel(self, kernel_id):
        """An :class:`AsyncKernel` for a running kernel; fails with NoSuchKernel if none has *kernel_id*."""
        def find(models):
            for model in models:
                if model.get("id") == kernel_id:
                    return AsyncKernel(self, model)
            raise NoSuchKernel(f"no kernel {kernel_id!r} (see kernels())")

        def where_it_is(kernel):  # its last seq: where to look for an execution after a drop
            def seen(page):
                kernel.last_seq = page["last_seq"]
                return kernel
            return kernel.outputs(since=0, limit=0).addCallback(seen)
        return self.kernels().addCallback(find).addCallback(where_it_is)

    def close(self):
        """Leave the realm and close the connection (never to reconnect); fires once it is closed."""
        return self.keeper.close(self.timeout or DEFAULT_TIMEOUT)


class AsyncKernel:
    """One kernel: its procedures ``webkernel.kernel.<id>.*`` and its output topics."""

    def __init__(self, client, model):
        self.client = client
        self.model = model
        self.id = model["id"]
        self.last_seq = 0  # the highest output seq this client has seen of the kernel
        self._claimed = OrderedDict()  # msg_ids of executions of this client, the newest _CLAIMED

    def __repr__(self):
        return f"<AsyncKernel {self.id} {self.model.get('name')!r}>"

    def call(self, name, *args, **kwargs):
        """Call this kernel's procedure *name* (``execute``, ``complete``, …)."""
        d = self.client.call(uris.kernel_procedure(self.id, name), *args, **kwargs)
        return d.addErrback(self._unregistered)

    def _unregistered(self, failure):
        # An external router with no host for this kernel has no procedure at all.
        if failure.check(NoSuchProcedure):
            e = failure.value
            raise NoSuchKernel(f"no kernel {self.id!r}: {e.message}", e.uri, e.error_args, e.error_kwargs)
        return failure

    def execute(self, code, on_output=None, on_input=None, timeout=None, **options):
        """Run *code*; the final result ``{status, execution_count, reply, outputs, msg_id}``.

        ``on_output(output_message)`` is called for each output as it happens,
        in order; ``on_input(prompt, password)`` answers the code's
        ``input()`` (its return value, or a Deferred of it, is sent to the
        kernel). An exception from either cancels the call, which interrupts
        the code if it still runs, and is what the Deferred fails with. More
        ``execute_request`` fields (``silent``, ``store_history``,
        ``user_expressions``, ``stop_on_error``) go in *options*. If the
        connection drops, the code goes on and, once reconnected, so do the
        callbacks, each output once, and the final result (see
        :mod:`broker.client.execution`).
        """
        options.setdefault("allow_stdin", on_input is not None)
        return Execution(self, on_output, on_input).start(code, timeout, options)

    def eval_cell(self, code, timeout=None):
        """The ``text/plain`` of *code*'s result (``'5'`` for ``2+3``); fails with ExecutionFailed."""
        return self.call("eval_cell", code, timeout=timeout)

    def complete(self, code, cursor_pos=None):
        """The ``complete_reply`` content (cursor at the end of *code* unless given)."""
        return self.call("complete", code, cursor_pos=cursor_pos)

    def inspect(self, code, cursor_pos=None, detail_level=0):
        """The ``inspect_reply`` content."""
        return self.call("inspect", code, cursor_pos=cursor_pos, detail_level=detail_level)

    def is_complete(self, code):
        """The ``is_complete_reply`` content."""
        return self.call("is_complete", code)

    def history(self, **fields):
        """The ``history_reply`` content (``history_request`` fields as keywords)."""
        return self.call("history", **fields)

    def kernel_info(self):
        """The ``kernel_info_reply`` content."""
        return self.call("kernel_info")

    def input(self, value):
        """Answer the kernel's pending ``input_request`` with *value*."""
        return self.call("input", value)

    def outputs(self, since=0, limit=None):
        """``{first_seq, last_seq, outputs, complete}``: kept output messages with ``seq > since``."""
        return self.call("outputs", since=since, limit=limit)

    def reply(self, msg_id):
        """``{msg_id, status, execution_count, reply, truncated}``: a recent execute request's reply."""
        return self.call("reply", msg_id)

    def interrupt(self):
        """Interrupt the running code (SIGINT or ``interrupt_request``)."""
        return self.call("interrupt")

    def restart(self, timeout=None):
        """Restart the kernel (same id, fresh state); fires with its model once ready."""
        return self.call("restart", timeout=timeout).addCallback(self._remember)

    def _remember(self, model):
        if isinstance(model, dict):
            self.model = model
        return model

    def shutdown(self):
        """Stop the kernel; fires once its process is gone."""
        return self.call("shutdown")

    def watch(self, callback, since=None):
        """Call ``callback(output_message)`` for every output of this kernel, in seq order, once each.

        Its iopub messages and input requests, from now on (or every one
        after seq *since* the history still holds), across reconnects; a gap
        notice ``{msg_type: "gap", from_seq, to_seq, lost: True}`` stands for
        outputs the history no longer has. Fires with a :class:`Watch`.
        """
        feed = OutputFeed(self, callback, since)
        d = feed.start().addTimeout(self.client.timeout or DEFAULT_TIMEOUT, self.client.reactor)
        return d.addCallbacks(Watch, from_failure)

    # -- what this client has seen of the kernel ---------------------------------------------

    def saw(self, output):
        """Note an output's seq (the highest one is where to look from after a drop)."""
        if isinstance(output.get("seq"), int):
            self.last_seq = max(self.last_seq, seq_range(output)[1])

    def claim(self, msg_id):
        """Note *msg_id* as one of this client's executions."""
        self._claimed[msg_id] = True
        self._claimed.move_to_end(msg_id)
        while len(self._claimed) > _CLAIMED:
            self._claimed.popitem(last=False)

    def claimed(self, msg_id):
        return msg_id in self._claimed


class Watch:
    """A running :meth:`AsyncKernel.watch`; ``stop()`` ends it."""

    def __init__(self, feed):
        self.feed = feed

    def stop(self):
        """Unsubscribe; a Deferred that fires once the router confirmed."""
        return self.feed.stop()


def connect_async(url, token=None, realm="webkernel", authid=None, timeout=DEFAULT_TIMEOUT,
                  reactor=None, reconnect=True, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT,
                  user=None, password=None, ping_interval=DEFAULT_PING_INTERVAL,
                  ping_timeout=DEFAULT_PING_TIMEOUT):
    """Connect to the service at *url*; a Deferred of a joined :class:`AsyncClient`.

    *url* is the URL the service logs (``http://host:port/?token=…``) or a
    WebSocket URL (``ws://host:port/ws``); *token* is the service token
    (WAMP-Ticket; ``None``: from the URL, else join anonymously); on a
    multi-user service (``--users``) give *user* and *password* instead
    (WAMP-CRA: the password is not sent). *timeout*
    (seconds) bounds connecting and is every call's default (``0``: calls
    have none). With *reconnect* a dropped connection is opened again, under
    the same authid, for at most *reconnect_timeout* seconds. The client
    pings the service every *ping_interval* seconds and drops a connection
    that sends no pong within *ping_timeout* seconds (a network partition),
    which then reconnects; ``ping_interval=None``: no pings.
    """
    check_ping(ping_interval, ping_timeout)
    if reactor is None:
        from twisted.internet import reactor
    connect_timeout = timeout or DEFAULT_TIMEOUT
    if (user is None) != (password is None):
        raise ValueError("give both user= and password=, or neither")
    authid = user if user is not None else authid

    def reopen(joined_as, seconds_left):
        return open_websocket_session(reactor, url, token, realm, joined_as,
                                      min(connect_timeout, seconds_left), password,
                                      ping_interval, ping_timeout)

    def joined(session):
        keeper = SessionKeeper(session, reactor, reopen if reconnect else None, reconnect_timeout)
        return AsyncClient(session, reactor, timeout, keeper)
    d = open_websocket_session(reactor, url, token, realm, authid, connect_timeout, password,
                               ping_interval, ping_timeout)
    return d.addCallback(joined)
