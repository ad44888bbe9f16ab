"""Which ``Host`` headers the service answers: the defence against DNS rebinding.

A page on ``attacker.invalid`` whose name the attacker re-points at 127.0.0.1
is, to the browser, same-origin with the service: its requests carry
``Host: attacker.invalid`` and an ``Origin`` that matches it. So an HTTP
request (the WebSocket handshake included) must name the service: a loopback
name or address, an address the service listens on, or a name given with
``--allowed-host`` (``*`` allows all). An IP address in ``Host`` is allowed
when the service listens on it, or on every interface (a rebinding attack
needs a name; a browser sends an address only when the user typed one). A
request without ``Host`` (HTTP/1.0, non-browser clients) is allowed.

What a page's script sends always carries ``Origin`` (a WebSocket handshake,
a POST). A request without one is checked only while the service listens on
loopback alone: listening elsewhere, Python clients and kernel hosts reach it
by whatever name the network gives it (``--router ws://router:8080/ws``),
and need no ``--allowed-host``; the notebook page opened by such a name does.
"""
import ipaddress
import re

import attr

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
WILDCARD_INTERFACES = frozenset({"", "0.0.0.0", "::"})


def host_name(header):
    """The name or address in a ``Host`` header, without port or brackets, lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        return header.partition(":")[0]
    return header


def _address(name):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@attr.s(frozen=True)
class HostAllowList:
    """The names and addresses a request's ``Host`` may name."""

    names = attr.ib(converter=lambda names: frozenset(n.lower() for n in names),
                    default=frozenset())
    interfaces = attr.ib(converter=frozenset, default=frozenset({"127.0.0.1"}))

    @property
    def loopback_only(self):
        """True if the service listens on loopback addresses alone (or on no TCP port)."""
        return all(_address(i) is not None and _address(i).is_loopback for i in self.interfaces)

    def allows(self, header, from_page=True):
        """True if a request with this ``Host`` header (str, or None) is for this service.

        *from_page*: the request carries ``Origin`` (see the module docstring).
        """
        if not header or "*" in self.names or not (from_page or self.loopback_only):
            return True
        name = host_name(header)
        if name in LOOPBACK_NAMES or name in self.names:
            return True
        address = _address(name)
        if address is None:
            return False
        return (address.is_loopback or str(address) in self.interfaces
                or bool(self.interfaces & WILDCARD_INTERFACES))


def listening_interfaces(descriptions):
    """The interface addresses in endpoint strings (``tcp:8080:interface=10.0.0.5`` gives ``10.0.0.5``).

    A TCP endpoint without ``interface=`` listens on every interface (``""``, or
    ``"::"`` for ``tcp6``).
    """
    found = set()
    for description in descriptions:
        kind, *parts = re.split(r"(?<!\\):", description)
        if kind not in ("tcp", "tcp6", "ssl"):
            continue
        interface = "::" if kind == "tcp6" else ""
        for part in parts:
            if part.startswith("interface="):
                interface = part[len("interface="):].replace("\\:", ":")
        found.add(str(_address(interface) or interface) if interface else "")
    return found
