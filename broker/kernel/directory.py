"""Which host runs which kernel: what the other hosts of a cluster know (docs/scaling.md).

Each host of a cluster publishes its kernels' lifecycle on the host-only
topic ``webkernel.host.kernels`` (``{host, event, kernel}``), and each keeps a
:class:`HostDirectory` of the others' from it (and, on joining, from every
host's list). When a host's session leaves the router, its kernels are
orphans; those that have not come back under another session of their host
(a host that reconnects registers and announces them again) within the grace
period are reported ``dead`` to their watchers by one surviving host.
"""

#: events after which a kernel is no longer anyone's
_GONE = frozenset({"stopped", "dead"})


class HostDirectory:
    """``host id -> {kernel id: model}`` of the other hosts' kernels; the one owner of that map."""

    def __init__(self):
        self._hosts = {}

    def learn(self, host, event, model):
        """A host told of *event* for its kernel *model*."""
        kernel_id = model["id"]
        for kernels in self._hosts.values():  # a kernel has one host: the last that spoke of it
            kernels.pop(kernel_id, None)
        if event not in _GONE:
            self._hosts.setdefault(host, {})[kernel_id] = model
        self._hosts = {h: k for h, k in self._hosts.items() if k}

    def kernels_of(self, host):
        """The models of the kernels *host* runs, as last told."""
        return list(self._hosts.get(host, {}).values())

    def forget(self, host, kernel_ids):
        """Drop *host*'s kernels of *kernel_ids* that no other host has claimed since; return their models."""
        kernels = self._hosts.get(host, {})
        gone = [kernels.pop(k) for k in kernel_ids if k in kernels]
        if not kernels:
            self._hosts.pop(host, None)
        return gone
