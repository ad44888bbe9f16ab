"""A TCP relay between a client and the service that a test can sever: a real dropped connection.

The client connects to the relay's port; each connection is piped to the
service's. :meth:`Relay.sever` aborts every piped connection on both sides
at once (no WebSocket or WAMP goodbye: as a network failure looks), and the
relay goes on accepting, so the client can connect again. :meth:`Relay.freeze`
is a partition instead: the piped connections stay open but carry nothing
more either way (no FIN, no RST), while new connections are piped as before. Runs on the reactor
(call it from the reactor thread).
"""

from twisted.internet import defer, endpoints
from twisted.protocols import portforward


class _Pipe(portforward.ProxyServer):
    noisy = False

    def connectionMade(self):
        self.factory.accepted(self)
        super().connectionMade()

    def connectionLost(self, reason):
        self.factory.pipes.discard(self)
        super().connectionLost(reason)


class Relay(portforward.ProxyFactory):
    """Listens on a free loopback port; ``connections`` counts the connections accepted."""

    protocol = _Pipe
    noisy = False

    def __init__(self, port):
        super().__init__("127.0.0.1", port)
        self.pipes = set()
        self.connections = 0
        self.listening = None
        self.port_number = None
        self._waiting = []  # (count, Deferred)

    @defer.inlineCallbacks
    def listen(self, reactor):
        """Start listening; fires with the port."""
        endpoint = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self.listening = yield endpoint.listen(self)
        self.port_number = self.listening.getHost().port
        return self.port_number

    def accepted(self, pipe):
        self.connections += 1
        self.pipes.add(pipe)
        for count, d in list(self._waiting):
            if self.connections >= count:
                self._waiting.remove((count, d))
                d.callback(self.connections)

    def connection(self, count):
        """A Deferred that fires once *count* connections have been accepted in all."""
        if self.connections >= count:
            return defer.succeed(self.connections)
        d = defer.Deferred()
        self._waiting.append((count, d))
        return d

    def sever(self):
        """Abort every piped connection, both sides, at once."""
        for pipe in list(self.pipes):
            pipe.transport.abortConnection()
            if pipe.peer is not None:
                pipe.peer.transport.abortConnection()

    def freeze(self):
        """A partition: every piped connection stops carrying bytes, both ways, and nobody is told."""
        for pipe in list(self.pipes):
            pipe.transport.stopReading()
            if pipe.peer is not None:
                pipe.peer.transport.stopReading()

    def stop_accepting(self):
        """Refuse new connections (a fires-once Deferred)."""
        listening, self.listening = self.listening, None
        return defer.maybeDeferred(listening.stopListening) if listening else defer.succeed(None)

    def close(self):
        """Sever and stop listening."""
        self.sever()
        return self.stop_accepting()
