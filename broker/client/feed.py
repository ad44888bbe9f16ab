"""A kernel's output, followed in seq order with each message once, across reconnects.

An :class:`OutputFeed` subscribes to the kernel's topics (``iopub`` by
prefix, and ``stdin``), then catches up from ``outputs(since=…)``; an
:class:`~broker.client.ordering.OutputSequencer` puts both in order. After a
reconnect it subscribes again on the new session and catches up from the
last seq it delivered. A gap marker, or a hole that does not fill itself
within ``HOLE_WAIT`` seconds, is fetched from the history too. Watches and
executions followed after a dropped connection are built on it.
"""

from autobahn.wamp import types
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from broker.client.errors import ConnectionLost, from_failure
from broker.client.ordering import OutputSequencer
from broker.kernel import uris

#: outputs asked for per history call
PAGE = 1000
#: seconds an output may wait for the ones ahead of it before they are fetched
HOLE_WAIT = 0.3


def event_output(args, kwargs):
    """An output message from a progressive result or an event (kwargs, or one dict argument)."""
    return dict(kwargs) if kwargs else (args[0] if args else {})


class OutputFeed:
    """Delivers ``deliver(output)`` for each output of a kernel after seq *since*, in order, once.

    *since* None means from now on: the first output after the kernel's last
    seq at start. ``start()`` fires once subscribed and caught up; if the
    feed fails later (the kernel is gone, the client gave up reconnecting)
    ``on_error(failure)`` is called and the feed stops.
    """

    log = Logger()

    def __init__(self, kernel, deliver, since=None, on_error=None):
        self.kernel = kernel
        self.keeper = kernel.client.keeper
        self.clock = kernel.client.reactor
        self.consumer = deliver
        self.on_error = on_error or (lambda failure: None)
        self.sequencer = OutputSequencer(self._deliver, since or 0)
        self.subscriptions = []
        self.stopped = False
        self._from_now = since is None
        self._session = None
        self._ready = None
        self._listener = None
        self._fetching = False
        self._fetch_again = False
        self._caught_up = []
        self._hole_timer = None

    def start(self):
        """Subscribe and catch up; a Deferred that fires with the feed once it has."""
        self._ready = defer.Deferred(lambda _: self.stop())
        self._listener = self.keeper.add_listener(self._open, self._fail)
        self.keeper.joined().addCallbacks(self._open, self._fail)
        return self._ready

    def stop(self):
        """Unsubscribe and deliver no more; a Deferred that fires once unsubscribed."""
        if self.stopped:
            return defer.succeed(None)
        self.stopped = True
        self.keeper.remove_listener(self._listener)
        if self._hole_timer is not None and self._hole_timer.active():
            self._hole_timer.cancel()
        subscriptions, self.subscriptions = self.subscriptions, []
        # in a later turn: Autobahn skips the next handler of an event if one unsubscribes
        # while it is being dispatched (it removes it from the list it iterates)
        return task.deferLater(self.clock, 0, self._unsubscribe, subscriptions)

    @staticmethod
    def _unsubscribe(subscriptions):
        live = [s for s in subscriptions if s.active and s.session.is_attached()]
        done = [defer.maybeDeferred(s.unsubscribe).addErrback(lambda _: None) for s in live]
        return defer.gatherResults(done).addCallback(lambda _: None)

    # -- subscribing, on each session -----------------------------------------------------

    @defer.inlineCallbacks
    def _open(self, session):
        if self.stopped or session is self._session:
            return
        self._session = session
        self.subscriptions = []
        try:
            for topic, match in (("iopub", "prefix"), ("stdin", "exact")):
                subscribed = defer.maybeDeferred(
                    session.subscribe, self._event, uris.kernel_topic(self.kernel.id, topic),
                    options=types.SubscribeOptions(match=match))
                self.subscriptions.append((yield subscribed.addErrback(from_failure)))
            yield self._catch_up()
        except Exception:
            return self._fetch_failed(Failure())
        if not self._ready.called:
            self._ready.callback(self)

    def _event(self, *args, **kwargs):
        if not self.stopped and self.sequencer.accept(event_output(args, kwargs)):
            self._catch_up().addErrback(self._fetch_failed)
        self._watch_for_holes()

    def _fetch_failed(self, failure):
        if failure.check(ConnectionLost) and self.keeper.reconnects:
            return None  # the next session catches up again
        self._fail(failure)

    def _fail(self, failure):
        if self.stopped:
            return
        self.stop()
        if not isinstance(failure, Failure):
            failure = Failure(failure)
        if not self._ready.called:
            self._ready.errback(failure)
        else:
            self.on_error(failure)

    # -- catching up from the history -------------------------------------------------------

    def _catch_up(self):
        """Fetch what the history has after the last delivered seq; fires once done."""
        done = defer.Deferred()
        self._caught_up.append(done)
        if self._fetching:
            self._fetch_again = True  # something new may be missing: look again after this fetch
        else:
            self._fetch()
        return done

    @defer.inlineCallbacks
    def _fetch(self):
        self._fetching = True
        result = None
        try:
            while True:
                self._fetch_again = False
                yield self._fetch_pages()
                if not self._fetch_again or self.stopped:
                    break
        except Exception:
            result = Failure()
        self._fetching = False
        waiting, self._caught_up = self._caught_up, []
        for done in waiting:
            if result is None:
                done.callback(None)
            else:
                done.errback(result)
        self._watch_for_holes()

    @defer.inlineCallbacks
    def _fetch_pages(self):
        if self._from_now:
            start = yield self.kernel.outputs(since=0, limit=0)
            self._from_now = False
            self.sequencer.start_at(start["last_seq"])
        while not self.stopped:
            page = yield self.kernel.outputs(since=self.sequencer.applied, limit=PAGE)
            if self.stopped or not self.sequencer.accept_page(page):
                return

    def _watch_for_holes(self):
        if self.stopped or not self.sequencer.waiting or self._fetching:
            return
        if self._hole_timer is None or not self._hole_timer.active():
            self._hole_timer = self.clock.callLater(HOLE_WAIT, self._hole_not_filled)

    def _hole_not_filled(self):
        if not self.stopped and self.sequencer.waiting:
            self._catch_up().addErrback(self._fetch_failed)

    def _deliver(self, output):
        if self.stopped:
            return
        self.kernel.saw(output)
        try:
            self.consumer(output)
        except Exception:
            self.log.failure("an output callback of kernel {kernel_id} failed", kernel_id=self.kernel.id)
