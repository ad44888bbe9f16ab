"""Exceptions of the kernel side, each named for its condition.

They carry no WAMP error URI: the kernel host binds them to URIs where it
turns them into WAMP errors.
"""


class NoSuchKernelSpec(LookupError):
    """No installed kernelspec has the requested name."""


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
