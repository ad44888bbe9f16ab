"""Linux network namespaces for the scale-out tests: one per kernel host, linked to the root namespace.

Each namespace (``wk-<pid>-<label>``) has its own loopback, up, and a veth
pair to the root namespace on a private /30 (``10.231.X.4i+1`` on the root
side, ``.4i+2`` inside), X chosen per run among the subnets no interface
uses. It has no other route: a process inside reaches the root namespace's
address of its own link and nothing else (not the root's 127.0.0.1, not the
other namespaces). Cutting the link (:meth:`Namespace.cut`, the root side set
down) drops every packet without a FIN or a RST, as a network partition does.
Creating them needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); :func:`missing`
says why they cannot be made here.
"""

import os
import signal
import subprocess

import attr

SUBNET = "10.231"


class NamespacesUnavailable(Exception):
    """Network namespaces cannot be made here (the reason is the message)."""


def _ip(*args, check=True):
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NamespacesUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@attr.s
class Namespace:
    """One network namespace, its link to the root namespace and the addresses at both ends."""

    name = attr.ib()
    veth = attr.ib()  # the root side's end of the link
    address = attr.ib()  # inside the namespace
    gateway = attr.ib()  # the root side's address: where processes inside reach the root

    @property
    def wrapper(self):
        """The command prefix that runs a program inside (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name]

    def cut(self):
        """Partition: the link's root side goes down; packets either way are dropped silently."""
        _ip("link", "set", self.veth, "down")

    def heal(self):
        _ip("link", "set", self.veth, "up")

    def pids(self):
        return [int(pid) for pid in _ip("netns", "pids", self.name, check=False).split()]

    def kill_all(self):
        """SIGKILL every process inside (kernel hosts and the kernels they left)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def missing():
    """Why network namespaces cannot be made here (None if they can, as far as we can tell without trying)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); CI runs the tests as root"
    if subprocess.run(["sh", "-c", "command -v ip"], capture_output=True).returncode != 0:
        return "no ip command (iproute2) to make network namespaces"
    return None


def _free_subnet():
    """A third octet X such that no interface has an address in 10.231.X.0/24."""
    used = _ip("-o", "-4", "addr", "show")
    for step in range(256):
        x = (os.getpid() + step) % 254 + 1
        if f" {SUBNET}.{x}." not in used:
            return x
    raise NamespacesUnavailable(f"no free {SUBNET}.X.0/24 subnet")


def make(labels):
    """One linked :class:`Namespace` per label; raises NamespacesUnavailable (having removed what it made)."""
    x = _free_subnet()
    made = []
    try:
        for i, label in enumerate(labels):
            ns = Namespace(name=f"wk-{os.getpid()}-{label}", veth=f"wk{os.getpid()}{label}",
                           address=f"{SUBNET}.{x}.{4 * i + 2}", gateway=f"{SUBNET}.{x}.{4 * i + 1}")
            _ip("netns", "add", ns.name)
            made.append(ns)
            _ip("link", "add", ns.veth, "type", "veth", "peer", "name", "uplink", "netns", ns.name)
            _ip("addr", "add", f"{ns.gateway}/30", "dev", ns.veth)
            _ip("link", "set", ns.veth, "up")
            _ip("-n", ns.name, "link", "set", "lo", "up")
            _ip("-n", ns.name, "addr", "add", f"{ns.address}/30", "dev", "uplink")
            _ip("-n", ns.name, "link", "set", "uplink", "up")
    except NamespacesUnavailable:
        remove(made)
        raise
    return made


def remove(namespaces):
    """Kill everything inside each namespace and delete it (and its link); never raises."""
    for ns in namespaces:
        ns.kill_all()
        _ip("link", "del", ns.veth, check=False)  # also removes the end inside
        _ip("netns", "del", ns.name, check=False)
