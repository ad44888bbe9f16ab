"""Exceptions of the kernel side, each named for its condition.

Those a caller is told of are conditions (:class:`broker.errors.Condition`) bound to
their URI (``uri``); the procedure wrapper (:func:`broker.errors.answering`)
sends them. The others (a channel closed, a session without a key, …) are
the service's own problems and never reach a caller as such. Conditions
found where the state they are about lives are defined there:
``KernelDied``, ``KernelShutDown`` and ``KernelStartFailed`` in
:mod:`broker.kernel.supervisor`, ``NoPendingInput`` in
:mod:`broker.kernel.session`, ``NoSuchRequest`` in :mod:`broker.kernel.replies`.
"""

from broker import errors


class NoSuchKernelSpec(errors.Condition, LookupError):
    """No installed kernelspec has the requested name."""

    uri = errors.NO_SUCH_KERNELSPEC


class NoSuchKernel(errors.Condition):
    """No kernel of that id runs here."""

    uri = errors.NO_SUCH_KERNEL


class KernelLimit(errors.Condition):
    """As many kernels run as the host may run (``--max-kernels``)."""

    uri = errors.KERNEL_LIMIT


class KernelUnavailable(errors.Condition):
    """The kernel is starting, restarting or dead: it takes no requests now."""

    uri = errors.KERNEL_NOT_READY


class InvalidKernelId(ValueError):
    """A kernel id is not a string of ``[0-9a-z_]`` (it names files and WAMP URIs)."""


class KernelCommandNotFound(LookupError):
    """The executable of a kernelspec's ``argv`` is not on the PATH."""


class UnknownChannel(ValueError):
    """A request names a channel that cannot carry requests (not shell, control or stdin)."""


class ChannelsClosed(RuntimeError):
    """The kernel's channels were closed; nothing more can be sent or awaited."""


class UnsignedSession(ValueError):
    """The Session has no HMAC key: every message to and from a kernel must be signed."""


class KernelNotReady(TimeoutError):
    """The kernel did not answer on shell, or iopub did not deliver, within the time allowed."""


class KernelGone(LookupError):
    """A kernel recorded in the kernel directory no longer runs (or cannot be reached)."""
