"""The exceptions of the kernel API's clients, one per error condition.

Every WAMP error the service answers with (``docs/kernels.md``, Errors, and
the standard ``wamp.error.*`` of ``docs/protocol.md``) becomes an exception
named for its condition, all subclasses of :class:`KernelError`, keeping the
error URI as ``uri`` and the error's payload as ``error_args`` and
``error_kwargs``. :func:`from_failure` does the translation; URIs come from
their one home, :mod:`broker.errors`.
"""

from autobahn.wamp.exception import ApplicationError, TransportLost
from twisted.internet import defer

from broker import errors


class KernelError(Exception):
    """An error webkernel reported for a request (the base of every client error).

    ``uri`` is the WAMP error URI (``None`` for conditions found on the client's side).
    """

    uri = None

    def __init__(self, message="", uri=None, error_args=(), error_kwargs=None):
        super().__init__(message)
        self.message = message
        if uri is not None:
            self.uri = uri
        self.error_args = list(error_args)
        self.error_kwargs = dict(error_kwargs or {})

    def __str__(self):
        return self.message or self.uri or type(self).__name__


class ExecutionFailed(KernelError):
    """The code raised (``eval_cell``): ``ename``, ``evalue`` and ``traceback`` say how."""

    uri = errors.EXECUTION_FAILED

    @property
    def ename(self):
        return self.error_kwargs.get("ename")

    @property
    def evalue(self):
        return self.error_kwargs.get("evalue")

    @property
    def traceback(self):
        """Jupyter's list of traceback lines (the service sends it as ``traceback_lines``)."""
        lines = self.error_kwargs.get("traceback_lines")
        if isinstance(lines, list):
            return lines
        text = self.error_kwargs.get("traceback")
        return text if isinstance(text, list) else text.split("\n") if text else []


def _condition(name, uri, doc):
    return type(name, (KernelError,), {"uri": uri, "__doc__": doc, "__module__": __name__})


NoSuchKernel = _condition("NoSuchKernel", errors.NO_SUCH_KERNEL, "No host has a kernel of that id.")
NoSuchKernelSpec = _condition(
    "NoSuchKernelSpec", errors.NO_SUCH_KERNELSPEC, "No installed kernelspec has that name.")
KernelLimit = _condition(
    "KernelLimit", errors.KERNEL_LIMIT, "The service runs as many kernels as it may (--max-kernels).")
KernelNotReady = _condition(
    "KernelNotReady", errors.KERNEL_NOT_READY, "The kernel is still starting or restarting.")
KernelStartFailed = _condition(
    "KernelStartFailed", errors.KERNEL_START_FAILED,
    "The kernel did not become ready in time, or exited while starting.")
KernelDied = _condition("KernelDied", errors.KERNEL_DIED, "The kernel died while the call was pending.")
NoPendingInput = _condition(
    "NoPendingInput", errors.NO_PENDING_INPUT, "``input`` was called but the kernel is not waiting for input.")
NoSuchRequest = _condition(
    "NoSuchRequest", errors.NO_SUCH_REQUEST,
    "``reply`` for a msg_id the kernel has no recent execute request of.")
InvalidArgument = _condition("InvalidArgument", errors.INVALID_ARGUMENT, "A bad argument.")
NotAuthorized = _condition(
    "NotAuthorized", errors.NOT_AUTHORIZED, "The token is wrong, or the action is not allowed.")
NoSuchProcedure = _condition(
    "NoSuchProcedure", errors.NO_SUCH_PROCEDURE, "Nothing is registered for the called URI.")
Timeout = _condition(
    "Timeout", errors.TIMEOUT, "The call's timeout expired (an execution is interrupted).")
Canceled = _condition("Canceled", errors.CANCELED, "The call was canceled.")
ConnectionFailed = _condition(
    "ConnectionFailed", None, "The client could not connect and join the realm.")
ConnectionLost = _condition(
    "ConnectionLost", None, "The connection or session closed while the call was pending.")

_BY_URI = {cls.uri: cls for cls in (
    ExecutionFailed, NoSuchKernel, NoSuchKernelSpec, KernelLimit, KernelNotReady,
    KernelStartFailed, KernelDied, NoPendingInput, NoSuchRequest, InvalidArgument, NotAuthorized,
    NoSuchProcedure, Timeout, Canceled,
)}


def from_wamp(error):
    """The client exception for an Autobahn ``ApplicationError``."""
    message = error.args[0] if error.args and isinstance(error.args[0], str) else ""
    if error.error in _BY_URI:
        cls = _BY_URI[error.error]
    elif error.error.startswith("wamp.close.") or error.error == errors.PROTOCOL_VIOLATION:
        cls = ConnectionLost
    else:
        cls = KernelError
    return cls(message or error.error, error.error, error.args[1:] if message else error.args,
               error.kwargs)


def from_failure(failure):
    """Errback: raise the client exception for a WAMP error, timeout or lost transport."""
    if failure.check(ApplicationError):
        raise from_wamp(failure.value)
    if failure.check(TransportLost):
        raise ConnectionLost("the connection to the service is lost")
    if failure.check(defer.TimeoutError):
        raise Timeout("no answer from the service in time")
    return failure
