"""A kernel host pings its router, so a connection cut without a FIN is dropped and made again.

A network partition leaves the host's TCP connection half-open: the router
(Crossbar.io, by its own WebSocket pings) has closed its side, but nothing
reaches the host, which would wait for ever. These tests check the settings
the host connects with; tests/test_crossbar_netns.py cuts a real link.
"""

import tempfile

import txaio
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from broker import tap
from broker.kernel.service import (
    DEFAULT_ROUTER_PING,
    DEFAULT_ROUTER_PING_TIMEOUT,
    RECONNECT_MAX_DELAY,
    RemoteKernelHostService,
    router_transport,
)


class RouterPingTests(SynchronousTestCase):
    """The WebSocket a kernel host opens to its router has auto-ping on, with a timeout."""

    def connecting_factory(self, **ping):
        """The WebSocket factory a started RemoteKernelHostService connects to its router with."""
        reactor = MemoryReactorClock()
        txaio.use_twisted()
        previous, txaio.config.loop = txaio.config.loop, reactor  # Autobahn's retry timers
        self.addCleanup(setattr, txaio.config, "loop", previous)
        host = RemoteKernelHostService("ws://10.231.0.1:8080/ws", "webkernel", "secret", reactor,
                                       tempfile.mkdtemp(), launcher=object(),
                                       channels_factory=object(), **ping)
        host.startService()
        reactor.advance(0)
        [(address, port, wrapping, _, _)] = reactor.tcpClients
        self.assertEqual((address, port), ("10.231.0.1", 8080))
        self.host = host
        return wrapping._wrappedFactory

    def test_host_pings_the_router(self):
        """The host's connection pings every ping interval and is dropped after the timeout without a pong."""
        factory = self.connecting_factory(ping_interval=1.5, ping_timeout=2.5)
        self.assertEqual((factory.autoPingInterval, factory.autoPingTimeout), (1.5, 2.5))

    def test_defaults(self):
        """Without options the host pings every 10 s and gives up after 5 s (Crossbar.io's own defaults)."""
        factory = self.connecting_factory()
        self.assertEqual((factory.autoPingInterval, factory.autoPingTimeout), (10.0, 5.0))
        self.assertEqual(router_transport("ws://x/ws")["options"],
                         {"autoPingInterval": DEFAULT_ROUTER_PING,
                          "autoPingTimeout": DEFAULT_ROUTER_PING_TIMEOUT})

    def test_reconnect_backoff_is_capped(self):
        """A host whose router has been away for long tries again at least every 10 s, not Autobahn's 300 s."""
        self.connecting_factory()
        [transport] = self.host.component._transports
        self.assertEqual((transport.max_retries, transport.max_retry_delay), (-1, RECONNECT_MAX_DELAY))
        self.assertEqual(RECONNECT_MAX_DELAY, 10.0)

    def test_options(self):
        """--router-ping and --router-ping-timeout reach the host's transport; zero is refused."""
        options = tap.Options()
        options.parseOptions(["--router", "ws://127.0.0.1:1/ws", "--token", "h",
                              "--router-ping", "2", "--router-ping-timeout", "3"])
        (host,) = list(tap.makeService(options, reactor=Clock()))
        self.assertEqual(host.transport["options"], {"autoPingInterval": 2.0, "autoPingTimeout": 3.0})
        self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                          ["--router", "ws://127.0.0.1:1/ws", "--token", "h", "--router-ping", "0"])
