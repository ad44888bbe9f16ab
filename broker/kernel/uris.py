"""Every URI of the kernel API: procedures, topics and errors (see docs/kernels.md)."""

KERNELSPECS = "webkernel.kernelspecs"
KERNELS_START = "webkernel.kernels.start"
KERNELS_LIST = "webkernel.kernels.list"
KERNELS_EVENTS = "webkernel.kernels.events"
KERNEL_PREFIX = "webkernel.kernel."

NO_SUCH_KERNEL = "webkernel.error.no_such_kernel"
NO_SUCH_KERNELSPEC = "webkernel.error.no_such_kernelspec"
KERNEL_LIMIT = "webkernel.error.kernel_limit"
KERNEL_NOT_READY = "webkernel.error.kernel_not_ready"
KERNEL_START_FAILED = "webkernel.error.kernel_start_failed"
KERNEL_DIED = "webkernel.error.kernel_died"
EXECUTION_FAILED = "webkernel.error.execution_failed"
NO_PENDING_INPUT = "webkernel.error.no_pending_input"
NO_SUCH_REQUEST = "webkernel.error.no_such_request"


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
