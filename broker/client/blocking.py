"""The blocking client for scripts and the REPL: the Deferred client run by ``crochet``.

``crochet`` runs Twisted's reactor in a background thread; each method here
runs its :mod:`broker.client.asynchronous` twin in that thread and waits for
the result, so the logic lives in one place. Callbacks (``on_output``,
``on_input``, ``watch``) run in *your* threads, never the reactor's, so they
may block and may call the client. Ctrl-C while waiting cancels the call,
which interrupts the running code.
"""

import queue
import threading
import time

import crochet

from broker.client import asynchronous
from broker.client.asynchronous import DEFAULT_TIMEOUT, GRACE
from broker.client.errors import NoSuchKernel, Timeout
from broker.client.reconnect import DEFAULT_RECONNECT_TIMEOUT
from broker.client.session import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT


@crochet.run_in_reactor
def _in_reactor(function, *args, **kwargs):
    return function(*args, **kwargs)


def _from_reactor_thread(function, *args):
    from twisted.internet import reactor
    reactor.callFromThread(function, *args)


def _deadline(timeout, default):
    """Seconds to wait for a call of *timeout* (None: the default; 0: no limit)."""
    seconds = default if timeout is None else timeout
    return seconds + 2 * GRACE if seconds else None


def _wait(eventual, seconds):
    try:
        return eventual.wait(seconds)
    except crochet.TimeoutError:
        eventual.cancel()
        raise Timeout(f"no answer from the service within {seconds} s") from None
    except KeyboardInterrupt:
        eventual.cancel()
        raise


def connect(url, token=None, realm="webkernel", authid=None, timeout=DEFAULT_TIMEOUT,
            reconnect=True, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, user=None, password=None,
            ping_interval=DEFAULT_PING_INTERVAL, ping_timeout=DEFAULT_PING_TIMEOUT):
    """Connect to the service at *url*; a :class:`Client`.

    *url* is the URL the service logs (``http://127.0.0.1:8080/?token=…``,
    the token is taken from it) or ``ws://host:port/ws`` with *token*; on a
    multi-user service (``--users``), *user* and *password* (WAMP-CRA).
    *timeout* (seconds) bounds connecting and is every call's default. With
    *reconnect* a dropped connection is opened again, under the same authid,
    for at most *reconnect_timeout* seconds. The client pings the service
    every *ping_interval* seconds and drops a connection that sends no pong
    within *ping_timeout* seconds (then reconnects); ``ping_interval=None``:
    no pings.
    """
    crochet.setup()
    eventual = _in_reactor(asynchronous.connect_async, url, token=token, realm=realm,
                           authid=authid, timeout=timeout, reconnect=reconnect,
                           reconnect_timeout=reconnect_timeout, user=user, password=password,
                           ping_interval=ping_interval, ping_timeout=ping_timeout)
    return Client(_wait(eventual, 2 * (timeout or DEFAULT_TIMEOUT) + GRACE))  # connect, then join


class Client:
    """A connection to the service (see :class:`~broker.client.asynchronous.AsyncClient`)."""

    def __init__(self, async_client):
        self.async_client = async_client
        self.timeout = async_client.timeout

    @property
    def authid(self):
        """The name the client joined under (kept across reconnects)."""
        return self.async_client.authid

    def _run(self, method, *args, **kwargs):
        deadline = _deadline(kwargs.get("timeout"), self.timeout)
        return _wait(_in_reactor(method, *args, **kwargs), deadline)

    def kernelspecs(self):
        """``{default, kernelspecs: {name: {name, spec}}}``."""
        return self._run(self.async_client.kernelspecs)

    def start_kernel(self, kernel_name=None, timeout=None):
        """Start a kernel (the default kernelspec unless named); a :class:`Kernel` once ready."""
        started = self._run(self.async_client.start_kernel, kernel_name, timeout=timeout)
        return Kernel(started, self)

    def kernels(self):
        """Models of the kernels you may see."""
        return self._run(self.async_client.kernels)

    def kernel(self, kernel_id):
        """A :class:`Kernel` for a running kernel (NoSuchKernel if there is none)."""
        return Kernel(self._run(self.async_client.kernel, kernel_id), self)

    def close(self):
        """Leave and close the connection."""
        self._run(self.async_client.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Kernel:
    """One kernel (see :class:`~broker.client.asynchronous.AsyncKernel`)."""

    def __init__(self, async_kernel, client):
        self.async_kernel = async_kernel
        self.client = client
        self.id = async_kernel.id

    def __repr__(self):
        return f"<Kernel {self.id} {self.model.get('name')!r}>"

    @property
    def model(self):
        return self.async_kernel.model

    def _run(self, name, *args, **kwargs):
        return self.client._run(getattr(self.async_kernel, name), *args, **kwargs)

    def eval_cell(self, code, timeout=None):
        """The ``text/plain`` of *code*'s result: ``'5'`` for ``2+3``; raises ExecutionFailed."""
        return self._run("eval_cell", code, timeout=timeout)

    def execute(self, code, on_output=None, on_input=None, timeout=None, **options):
        """Run *code*; the final result ``{status, execution_count, reply, outputs, msg_id}``.

        ``on_output(output_message)`` is called for each output as it
        happens, in order, and ``on_input(prompt, password) -> str`` answers
        ``input()``; both in the calling thread. An exception from either
        cancels the execution (interrupting the code) and is raised. A
        dropped connection does not end it (see ``docs/clients.md``).
        """
        run = _BlockingExecution(self, on_output, on_input)
        return run.wait(code, timeout, options)

    def complete(self, code, cursor_pos=None):
        """The ``complete_reply`` content."""
        return self._run("complete", code, cursor_pos)

    def inspect(self, code, cursor_pos=None, detail_level=0):
        """The ``inspect_reply`` content."""
        return self._run("inspect", code, cursor_pos, detail_level)

    def is_complete(self, code):
        """The ``is_complete_reply`` content."""
        return self._run("is_complete", code)

    def history(self, **fields):
        """The ``history_reply`` content."""
        return self._run("history", **fields)

    def kernel_info(self):
        """The ``kernel_info_reply`` content."""
        return self._run("kernel_info")

    def input(self, value):
        """Answer the kernel's pending ``input_request``."""
        return self._run("input", value)

    def outputs(self, since=0, limit=None):
        """``{first_seq, last_seq, outputs, complete}``: kept output messages with ``seq > since``."""
        return self._run("outputs", since, limit)

    def reply(self, msg_id):
        """``{msg_id, status, execution_count, reply, truncated}``: a recent execute request's reply."""
        return self._run("reply", msg_id)

    def interrupt(self):
        """Interrupt the running code."""
        return self._run("interrupt")

    def restart(self, timeout=None):
        """Restart (same id, fresh state); the kernel's model once ready."""
        return self._run("restart", timeout=timeout)

    def shutdown(self):
        """Stop the kernel."""
        return self._run("shutdown")

    def watch(self, callback, since=None):
        """Call ``callback(output_message)`` for each output, in seq order, once, in a thread of its own.

        From now on, or after seq *since*; across reconnects (see
        :meth:`~broker.client.asynchronous.AsyncKernel.watch`). Returns a
        :class:`Watch`; ``stop()`` ends it.
        """
        events = queue.SimpleQueue()
        watch = Watch(self, self._run("watch", events.put, since), events, callback)
        watch.thread.start()
        return watch

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        try:
            self.shutdown()
        except NoSuchKernel:
            pass  # shut down already


class Watch:
    """A running :meth:`Kernel.watch`: its callback thread and subscription."""

    _STOP = object()

    def __init__(self, kernel, async_watch, events, callback):
        self.kernel = kernel
        self.async_watch = async_watch
        self._events = events
        self._callback = callback
        self.thread = threading.Thread(target=self._deliver, daemon=True,
                                       name=f"webkernel-watch-{kernel.id}")

    def _deliver(self):
        while (event := self._events.get()) is not self._STOP:
            self._callback(event)

    def stop(self):
        """Unsubscribe; outputs already received are still delivered."""
        self.kernel.client._run(self.async_watch.stop)
        self._events.put(self._STOP)


class _BlockingExecution:
    """Relays an execution's outputs and input requests from the reactor to the calling thread."""

    def __init__(self, kernel, on_output, on_input):
        self.kernel = kernel
        self.on_output = on_output
        self.on_input = on_input
        self.events = queue.SimpleQueue()

    def wait(self, code, timeout, options):
        eventual = _in_reactor(self._start, code, timeout, options)
        deadline = _deadline(timeout, self.kernel.client.timeout)
        try:
            return self._relay(deadline)
        except queue.Empty:
            eventual.cancel()
            raise Timeout(f"execution did not finish within {deadline} s") from None
        except BaseException:
            eventual.cancel()
            raise

    def _start(self, code, timeout, options):
        output = None if self.on_output is None else (lambda o: self.events.put(("output", o)))
        asking = None if self.on_input is None else self._ask
        d = self.kernel.async_kernel.execute(code, output, asking, timeout, **options)
        return d.addBoth(lambda result: self.events.put(("done", result)))

    def _ask(self, prompt, password):
        from twisted.internet import defer
        answer = defer.Deferred()
        self.events.put(("input", (prompt, password, answer)))
        return answer

    def _relay(self, deadline):
        end = None if deadline is None else time.monotonic() + deadline
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            kind, value = self.events.get(timeout=left)
            if kind == "output":
                self.on_output(value)
            elif kind == "input":
                prompt, password, answer = value
                try:
                    text = self.on_input(prompt, password)
                except BaseException as e:
                    _from_reactor_thread(answer.errback, e)
                    raise
                _from_reactor_thread(answer.callback, text)
            else:
                if hasattr(value, "raiseException"):
                    value.raiseException()
                return value
