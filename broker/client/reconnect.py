"""Keeping a client joined: after a dropped connection, a new session under the same authid.

:class:`SessionKeeper` holds the client's current session. When its
connection drops (other than by the client's own ``close``) it opens a new
one, joining under the authid the first session got (so kernels it started
stay its own), with exponential back-off: the first attempt after
``FIRST_DELAY`` seconds, then doubling, at most ``MAX_DELAY`` apart. After
``reconnect_timeout`` seconds without a session it gives up: everything
waiting for a session fails with ConnectionLost, and so does every later call.
Without a *reopen* function (``reconnect=False``) it never reconnects.
"""

from twisted.internet import defer, task
from twisted.logger import Logger

from broker.client.errors import ConnectionLost, NotAuthorized

FIRST_DELAY = 0.1
MAX_DELAY = 4.0
DEFAULT_RECONNECT_TIMEOUT = 60.0


class SessionKeeper:
    """The client's session, and a new one when the connection drops (see the module)."""

    log = Logger()

    def __init__(self, session, clock, reopen=None, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT):
        """*reopen(authid, timeout)* opens a joined session (a Deferred), or None: never reconnect."""
        self.session = session
        self.clock = clock
        self.reopen = reopen
        self.reconnect_timeout = reconnect_timeout
        self.authid = session.authid
        self.closing = False
        self.lost = None
        self._waiters = []
        self._listeners = []
        self._attempt = None
        self._watch(session)

    @property
    def reconnects(self):
        """True while a dropped connection would be (or is being) replaced."""
        return self.reopen is not None and not self.closing and self.lost is None

    def joined(self):
        """A Deferred of a joined session: at once, or once reconnected; fails with ConnectionLost."""
        session = self.session
        if session is not None and session.is_attached():
            return defer.succeed(session)
        if not self.reconnects:
            return defer.fail(self.lost or ConnectionLost("the connection to the service is closed"))
        waiter = defer.Deferred(lambda d: self._waiters.remove(d) if d in self._waiters else None)
        self._waiters.append(waiter)
        return waiter

    def add_listener(self, rejoined, lost):
        """Call ``rejoined(session)`` after every reconnect, ``lost(failure)`` when giving up."""
        listener = (rejoined, lost)
        self._listeners.append(listener)
        return listener

    def remove_listener(self, listener):
        if listener in self._listeners:
            self._listeners.remove(listener)

    def close(self, timeout):
        """Leave for good (never reconnect); a Deferred that fires once the connection is closed."""
        self.closing = True
        if self._attempt is not None:
            self._attempt.cancel()
        session = self.session
        if session is None:
            self._give_up(ConnectionLost("the client was closed"))
            return defer.succeed(None)
        if session.is_attached():
            session.leave()
        return session.when_closed().addTimeout(timeout, self.clock)

    # -- the connection drops -----------------------------------------------------------

    def _watch(self, session):
        session.when_closed().addCallback(lambda _: self._dropped(session))

    def _dropped(self, session):
        if session is not self.session:
            return
        self.session = None
        if not self.reconnects:
            reason = "the client was closed" if self.closing else "the connection to the service was lost"
            return self._give_up(ConnectionLost(reason))
        self.log.info("connection to the service lost; reconnecting as {authid} for at most {timeout} s",
                      authid=self.authid, timeout=self.reconnect_timeout)
        self._reconnect(self.clock.seconds() + self.reconnect_timeout)

    @defer.inlineCallbacks
    def _reconnect(self, deadline):
        delay = FIRST_DELAY
        why = "no attempt"
        while True:
            left = deadline - self.clock.seconds()
            if left <= 0:
                return self._give_up(ConnectionLost(
                    f"the connection to the service was lost and could not be opened again "
                    f"within {self.reconnect_timeout} s ({why})"))
            try:
                self._attempt = task.deferLater(self.clock, min(delay, left), lambda: None)
                yield self._attempt
                self._attempt = self.reopen(self.authid, max(deadline - self.clock.seconds(), FIRST_DELAY))
                session = yield self._attempt
                break
            except NotAuthorized as e:
                return self._give_up(ConnectionLost(f"the service refused the new session: {e}"))
            except Exception as e:  # refused, timed out, or canceled by close()
                if self.closing:
                    return self._give_up(ConnectionLost("the client was closed"))
                why = str(e) or type(e).__name__
            delay = min(delay * 2, MAX_DELAY)
        self._attempt = None
        if self.closing:
            session.leave()
            return
        self._rejoined(session)

    def _rejoined(self, session):
        self.session = session
        self._watch(session)
        self.log.info("reconnected to the service as {authid} (session {session_id})",
                      authid=session.authid, session_id=session.session_id)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(session)
        for rejoined, _ in list(self._listeners):
            rejoined(session)

    def _give_up(self, error):
        if self.lost is not None:
            return
        self.lost = error
        self.session = None
        self._attempt = None
        if self.reopen is not None and not self.closing:
            self.log.warn("{error}", error=error)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(error)
        listeners, self._listeners = self._listeners, []
        for _, lost in listeners:
            lost(error)
