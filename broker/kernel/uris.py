"""Every URI of the kernel API: procedures and topics (see docs/kernels.md); its errors are in :mod:`broker.errors`."""

KERNELSPECS = "webkernel.kernelspecs"
KERNELS_START = "webkernel.kernels.start"
KERNELS_LIST = "webkernel.kernels.list"
KERNELS_EVENTS = "webkernel.kernels.events"
KERNEL_PREFIX = "webkernel.kernel."


def kernel_procedure(kernel_id, name):
    """``webkernel.kernel.<id>.<name>``."""
    return f"{KERNEL_PREFIX}{kernel_id}.{name}"


def kernel_topic(kernel_id, sub):
    """``webkernel.kernel.<id>.<sub>`` (``sub`` like ``iopub.stream`` or ``stdin``)."""
    return f"{KERNEL_PREFIX}{kernel_id}.{sub}"


def kernel_id_of(uri):
    """The kernel id in a ``webkernel.kernel.<id>.…`` URI ('' if there is none)."""
    rest = uri[len(KERNEL_PREFIX):] if uri.startswith(KERNEL_PREFIX) else ""
    return rest.split(".", 1)[0]

#: per-host procedures of a kernel host in a cluster (docs/scaling.md): for hosts only
HOST_PREFIX = "webkernel.host."
#: each host's kernel lifecycle events for the other hosts: ``{host, event, kernel}``
HOST_KERNELS = "webkernel.host.kernels"


def host_procedure(host_id, name):
    """``webkernel.host.<host id>.<name>`` (the host id is its WAMP session id)."""
    return f"{HOST_PREFIX}{host_id}.{name}"
