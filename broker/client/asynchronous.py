"""The Twisted-native client of the kernel API: every method returns a Deferred.

:class:`AsyncClient` wraps a joined WAMP session and calls the
``webkernel.*`` procedures of ``docs/kernels.md``; :class:`AsyncKernel` is
one kernel. WAMP errors arrive as the exceptions of
:mod:`broker.client.errors`. Every call is bounded: it carries a WAMP call
``timeout`` (which interrupts an execution on the service's side) and the
client gives up a little after that if no answer comes at all.
"""

from autobahn.wamp import types
from twisted.internet import defer

from broker.client.errors import NoSuchKernel, NoSuchProcedure, from_failure
from broker.client.session import open_websocket_session
from broker.kernel import uris

#: seconds a call may take unless told otherwise
DEFAULT_TIMEOUT = 60.0
#: seconds the client waits past a call's timeout for the service's own timeout error
GRACE = 5.0


def payload(result):
    """A WAMP result as one value: its keyword arguments if it has any, else its one argument."""
    if isinstance(result, types.CallResult):
        if result.kwresults:
            return dict(result.kwresults)
        return result.results[0] if len(result.results) == 1 else list(result.results)
    return result


def _event(args, kwargs):
    """An output message from a progressive result or an event (kwargs, or one dict argument)."""
    return dict(kwargs) if kwargs else (args[0] if args else {})


class AsyncClient:
    """A session on the service's realm, for the kernel API (Deferred-returning)."""

    def __init__(self, session, reactor, timeout=DEFAULT_TIMEOUT):
        self.session = session
        self.reactor = reactor
        self.timeout = timeout

    def call(self, procedure, *args, timeout=None, on_progress=None, **kwargs):
        """Call *procedure*; a Deferred of its :func:`payload`.

        *timeout* (seconds) defaults to the client's; ``0`` means none.
        """
        seconds = self.timeout if timeout is None else timeout
        options = types.CallOptions(on_progress=on_progress,
                                    timeout=int(seconds * 1000) if seconds else None)
        d = defer.maybeDeferred(self.session.call, procedure, *args, options=options, **kwargs)
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
        return self.kernels().addCallback(find)

    def close(self):
        """Leave the realm and close the connection; fires once it is closed."""
        if self.session.is_attached():
            self.session.leave()
        return self.session.when_closed().addTimeout(self.timeout or DEFAULT_TIMEOUT, self.reactor)


class AsyncKernel:
    """One kernel: its procedures ``webkernel.kernel.<id>.*`` and its output topics."""

    def __init__(self, client, model):
        self.client = client
        self.model = model
        self.id = model["id"]

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
        ``user_expressions``, ``stop_on_error``) go in *options*.
        """
        options.setdefault("allow_stdin", on_input is not None)
        return _Execution(self, on_output, on_input).start(code, timeout, options)

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

    def watch(self, callback):
        """Call ``callback(output_message)`` for every iopub message of this kernel.

        A prefix subscription on ``webkernel.kernel.<id>.iopub``; fires with a
        :class:`Watch` whose ``stop()`` unsubscribes.
        """
        topic = uris.kernel_topic(self.id, "iopub")
        d = defer.maybeDeferred(
            self.client.session.subscribe, lambda *a, **kw: callback(_event(a, kw)), topic,
            options=types.SubscribeOptions(match="prefix"))
        d.addTimeout(self.client.timeout or DEFAULT_TIMEOUT, self.client.reactor)
        return d.addCallbacks(Watch, from_failure)


class Watch:
    """A subscription to a kernel's output; ``stop()`` ends it."""

    def __init__(self, subscription):
        self.subscription = subscription

    def stop(self):
        """Unsubscribe; a Deferred that fires once the router confirmed."""
        if not self.subscription.active:
            return defer.succeed(None)
        return defer.maybeDeferred(self.subscription.unsubscribe).addErrback(from_failure)


class _Execution:
    """One ``execute`` call: its progressive outputs, input requests and the callbacks' errors."""

    def __init__(self, kernel, on_output, on_input):
        self.kernel = kernel
        self.on_output = on_output
        self.on_input = on_input
        self.error = None
        self.call = None

    def start(self, code, timeout, options):
        wants_progress = self.on_output is not None or self.on_input is not None
        self.call = self.kernel.call("execute", code, timeout=timeout,
                                     on_progress=self.progress if wants_progress else None, **options)
        return self.call.addBoth(self.finish)

    def progress(self, *args, **kwargs):
        output = _event(args, kwargs)
        if self.error is not None:
            return
        if output.get("msg_type") == "input_request":
            return self.answer(output.get("content") or {})
        if self.on_output is not None:
            try:
                self.on_output(output)
            except Exception as e:
                self.failed(e)

    def answer(self, content):
        if self.on_input is None:
            return self.failed(RuntimeError("the code asked for input, but execute() has no on_input"))
        d = defer.maybeDeferred(self.on_input, content.get("prompt", ""), bool(content.get("password")))
        d.addCallback(self.kernel.input)
        d.addErrback(lambda f: self.failed(f.value))

    def failed(self, exception):
        """A callback raised: cancel the call (the service interrupts the code if it still runs)."""
        if self.error is None:
            self.error = exception
            self.call.cancel()

    def finish(self, result):
        if self.error is not None:
            raise self.error
        return result


def connect_async(url, token=None, realm="webkernel", authid=None, timeout=DEFAULT_TIMEOUT,
                  reactor=None):
    """Connect to the service at *url*; a Deferred of a joined :class:`AsyncClient`.

    *url* is the URL the service logs (``http://host:port/?token=…``) or a
    WebSocket URL (``ws://host:port/ws``); *token* is the service token
    (WAMP-Ticket; ``None``: from the URL, else join anonymously). *timeout*
    (seconds) bounds connecting and is every call's default (``0``: calls
    have none).
    """
    if reactor is None:
        from twisted.internet import reactor
    d = open_websocket_session(reactor, url, token, realm, authid, timeout or DEFAULT_TIMEOUT)
    return d.addCallback(lambda session: AsyncClient(session, reactor, timeout))
