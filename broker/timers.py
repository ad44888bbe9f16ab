"""Autobahn's WebSocket timers on a given reactor, for both ends of a connection.

Autobahn keeps a WebSocket factory's timers (opening handshake, auto-ping,
closing handshake) in a txaio batched timer of the global reactor, whatever
reactor the factory is given. :class:`ReactorTimers` replaces it (set as the
factory's ``_batched_timer``) so the router's listening side and the Python
client run them on the injected reactor, a ``task.Clock`` in tests.
"""


class ReactorTimers:
    """Autobahn's WebSocket timers (opening handshake, auto-ping, closing) on *reactor*.

    Autobahn uses ``call_later`` and ``cancel`` only.
    """

    def __init__(self, reactor):
        self.reactor = reactor

    def call_later(self, delay, function, *args, **kwargs):
        return _Timer(self.reactor.callLater(delay, function, *args, **kwargs))


class _Timer:
    def __init__(self, call):
        self.call = call

    def cancel(self):
        if self.call.active():
            self.call.cancel()
