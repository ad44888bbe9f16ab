"""Connections bounded per remote address and in all, so that descriptors never run out.

Slowloris (issue 10): about 1,000 connections that each sent one header line
every 15 s used up the process's file descriptors, and every new client, and
every kernel start, failed. Besides the header deadline
(:mod:`broker.http_guard`), :class:`LimitedFactory` wraps the listening
factory and closes a new connection at once when

* its remote address already has ``per_address`` connections open (IPv6
  addresses count per /64, what one host usually gets), or
* the service has ``total`` connections open; by default ``total`` is derived
  from the soft ``RLIMIT_NOFILE``, less a reserve for the service's own files
  and for ``--max-kernels`` kernels (:func:`default_max_connections`), so a
  kernel can still start when the connections are at their limit.

Refusing is logged once per episode (when it starts, and when connections are
accepted again, with how many were refused meanwhile), not per connection.
Should the descriptors run out anyway (``EMFILE`` from ``accept``), Twisted's
listening port closes the connection it cannot serve and goes on; it neither
spins nor stops.

The count is kept by a :class:`~twisted.protocols.policies.ProtocolWrapper`
(one method call more per write).
"""

import ipaddress
import resource
from collections import Counter

from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

#: one remote address may hold this many connections: a classroom of 300
#: behind one NAT address, each with its WebSocket and a few page loads
DEFAULT_PER_ADDRESS = 512
#: descriptors kept for the service itself: listening ports, log files,
#: kernelspecs and notebooks it reads, the reactor's own
FD_RESERVE = 128
#: descriptors one kernel takes in the service: five ZeroMQ sockets and
#: their internal pipes, the process's pipes, its output log
FDS_PER_KERNEL = 16
#: the least ``total`` derived from a small descriptor limit
MIN_TOTAL = 64

_log = Logger()


def default_max_connections(max_kernels, soft_limit=None):
    """Connections the service may hold at once, from the soft RLIMIT_NOFILE and *max_kernels*."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY:
        soft_limit = 1 << 20
    return max(MIN_TOTAL, soft_limit - FD_RESERVE - FDS_PER_KERNEL * max_kernels)


def address_key(address):
    """What connections are counted under: the IP address (IPv6: its /64), or None (Unix sockets)."""
    host = getattr(address, "host", None)
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class _Counted(ProtocolWrapper):
    """Counts one connection until it is lost.

    It stays the transport of whatever protocol takes the connection over
    (the sniffer hands it to HTTP or RawSocket, Autobahn upgrades HTTP to a
    WebSocket: both replace the ``wrappedProtocol`` of the ProtocolWrapper
    they are given as transport), so it sees the end of every connection,
    also under TLS, whose own wrapper sits outside it.
    """

    key = None


class LimitedFactory(WrappingFactory):
    """Wraps a listening factory; refuses connections past :class:`ConnectionLimits`."""

    protocol = _Counted

    def __init__(self, wrapped, per_address, total):
        super().__init__(wrapped)
        self.per_address, self.total = per_address, total
        self._by_address = Counter()
        self._refused = Counter()   # per key (None: the total) while refusing, for the log

    def buildProtocol(self, addr):
        key = address_key(addr)
        if len(self.protocols) >= self.total:
            return self._refuse(None, addr)
        if key is not None and self._by_address[key] >= self.per_address:
            return self._refuse(key, addr)
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            protocol.key = key
        return protocol

    def registerProtocol(self, protocol):
        super().registerProtocol(protocol)
        if protocol.key is not None:
            self._by_address[protocol.key] += 1

    def unregisterProtocol(self, protocol):
        super().unregisterProtocol(protocol)
        key = protocol.key
        if key is not None:
            self._by_address[key] -= 1
            if not self._by_address[key]:
                del self._by_address[key]
            if key in self._refused and self._by_address[key] < self.per_address:
                self._recovered(key)
        if None in self._refused and len(self.protocols) < self.total:
            self._recovered(None)

    def _refuse(self, key, addr):
        if not self._refused[key]:
            if key is None:
                _log.warn("refusing new connections: {count} are open, the limit "
                          "(--max-connections) is {limit}", count=len(self.protocols),
                          limit=self.total)
            else:
                _log.warn("refusing new connections from {address}: it has {limit} open, the "
                          "limit (--max-connections-per-address)", address=key,
                          limit=self.per_address)
        self._refused[key] += 1
        return None

    def _recovered(self, key):
        refused = self._refused.pop(key)
        _log.info("accepting connections{where} again; {refused} were refused meanwhile",
                  where=f" from {key}" if key else "", refused=refused)
