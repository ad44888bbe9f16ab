"""Every error and close-reason URI the service sends, in one place, and how a condition becomes one.

The standard ``wamp.error.*`` and ``wamp.close.*`` URIs are taken from
Autobahn's ``ApplicationError`` where it defines them, so each URI literal
appears once in this code base. ``docs/protocol.md`` (the router's),
``docs/kernels.md`` (the kernels') and ``docs/notebook.md`` (the notebook
files') document each of them: when it is sent and what a client can do
about it (``tests/test_errors.py`` checks that each is there).

A refusal is an exception named for its condition, a :class:`Condition`
whose class attribute ``uri`` binds it to its URI. The router turns its own
(:class:`RouterError`) into ``ERROR`` messages; the service's procedures are
wrapped by :func:`answering`, the one place a condition becomes an
``ApplicationError`` for Autobahn to send.
"""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

# -- session lifecycle ------------------------------------------------------
# (the spec's wamp.close.* names; Autobahn still has older wamp.error.* ones)
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_SUCH_REALM = ApplicationError.NO_SUCH_REALM
NOT_AUTHORIZED = ApplicationError.NOT_AUTHORIZED
AUTHORIZATION_FAILED = ApplicationError.AUTHORIZATION_FAILED
#: the ABORT a client sends when its own onChallenge refuses (Autobahn's, not a router's)
CANNOT_AUTHENTICATE = "wamp.error.cannot_authenticate"
#: multi-user mode: the session's user was removed, or their password or role changed
USER_CHANGED = "webkernel.close.user_changed"
USER_CHANGED_MESSAGE = "your user was removed, or your password or role changed: sign in again"
#: the session's unsent output passed the configured limit (the reason logged as
#: its connection is aborted: nothing is sent to a peer that does not read)
OUTPUT_LIMIT_EXCEEDED = "webkernel.error.output_limit_exceeded"

# -- requests ---------------------------------------------------------------
INVALID_URI = ApplicationError.INVALID_URI
INVALID_ARGUMENT = ApplicationError.INVALID_ARGUMENT
INVALID_PAYLOAD = ApplicationError.INVALID_PAYLOAD
NO_SUCH_PROCEDURE = ApplicationError.NO_SUCH_PROCEDURE
PROCEDURE_ALREADY_EXISTS = ApplicationError.PROCEDURE_ALREADY_EXISTS
PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT = (
    ApplicationError.PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT
)
NO_SUCH_REGISTRATION = ApplicationError.NO_SUCH_REGISTRATION
NO_SUCH_SUBSCRIPTION = ApplicationError.NO_SUCH_SUBSCRIPTION
NO_SUCH_SESSION = ApplicationError.NO_SUCH_SESSION
CANCELED = ApplicationError.CANCELED
TIMEOUT = ApplicationError.TIMEOUT
#: what Autobahn answers for a procedure that raised something not an ApplicationError
RUNTIME_ERROR = "wamp.error.runtime_error"
#: a RESULT too large for the caller's transport (its message size limit)
PAYLOAD_SIZE_EXCEEDED = ApplicationError.PAYLOAD_SIZE_EXCEEDED
#: a CALL while the session already has ``--max-pending-calls`` calls unanswered
TOO_MANY_CALLS = "webkernel.error.too_many_calls"
#: a SUBSCRIBE past ``--max-subscriptions`` (or a wildcard one past ``--max-wildcards``)
TOO_MANY_SUBSCRIPTIONS = "webkernel.error.too_many_subscriptions"
#: a REGISTER past ``--max-registrations`` (or a wildcard one past ``--max-wildcards``)
TOO_MANY_REGISTRATIONS = "webkernel.error.too_many_registrations"

# -- kernels (docs/kernels.md) ------------------------------------------------
#: a ``webkernel.kernel.<id>.*`` call for an id no host has
NO_SUCH_KERNEL = "webkernel.error.no_such_kernel"
#: ``start`` with an unknown ``kernel_name``
NO_SUCH_KERNELSPEC = "webkernel.error.no_such_kernelspec"
#: ``start`` beyond ``--max-kernels``
KERNEL_LIMIT = "webkernel.error.kernel_limit"
#: a request to a kernel still starting or restarting (or dead)
KERNEL_NOT_READY = "webkernel.error.kernel_not_ready"
#: the kernel did not become ready in time, or exited while starting
KERNEL_START_FAILED = "webkernel.error.kernel_start_failed"
#: the kernel died (or was shut down or restarted) while the call was pending
KERNEL_DIED = "webkernel.error.kernel_died"
#: ``eval_cell`` code raised: kwargs ``ename``, ``evalue``, ``traceback``, ``traceback_lines``
EXECUTION_FAILED = "webkernel.error.execution_failed"
#: ``input`` when the kernel is not waiting for input
NO_PENDING_INPUT = "webkernel.error.no_pending_input"
#: ``reply`` for a msg_id the kernel has no recent execute request of
NO_SUCH_REQUEST = "webkernel.error.no_such_request"

# -- notebook files (docs/notebook.md) --------------------------------------
#: the path leaves the notebook directory (``..``, an absolute path, a symlink out)
PATH_OUTSIDE_NOTEBOOK_DIR = "webkernel.error.path_outside_notebook_dir"
#: nothing (or not the expected kind of thing) exists at the path
NO_SUCH_PATH = "webkernel.error.no_such_path"
#: get or save of a path that does not name a ``.ipynb`` file
NOT_A_NOTEBOOK = "webkernel.error.not_a_notebook"
#: the file is not a readable notebook, or the content to save is not a valid one
INVALID_NOTEBOOK = "webkernel.error.invalid_notebook"
#: ``notebooks.get`` of a file larger than ``--max-notebook-size``; nothing is read
NOTEBOOK_TOO_LARGE = "webkernel.error.notebook_too_large"
#: ``notebooks.save`` that the filesystem refused (no space, no permission); the old file is intact
NOTEBOOK_NOT_SAVED = "webkernel.error.notebook_not_saved"
#: ``--notebook-queue`` notebook requests are already running or waiting; try again later
NOTEBOOKS_BUSY = "webkernel.error.notebooks_busy"


class Condition(Exception):
    """A refusal a peer is told of: ``uri`` (a constant of this module) names the condition.

    The first argument is a message for a person; further positional and
    keyword arguments travel with the error.
    """

    uri = None

    def __init__(self, message, *args, **kwargs):
        super().__init__(message)
        self.message = message
        self.args_ = [message, *args]
        self.kwargs = kwargs


def as_application_error(condition):
    """The ``ApplicationError`` Autobahn sends for *condition*."""
    return ApplicationError(condition.uri, *condition.args_, **condition.kwargs)


def _answer(failure):
    failure.trap(Condition)
    raise as_application_error(failure.value)


def answering(function):
    """*function* as a WAMP procedure: a :class:`Condition` it raises, or its Deferred
    fails with, reaches the caller as ERROR with the condition's URI.

    Every procedure the service registers goes through this (most through
    :func:`broker.kernel.arguments.checked`).
    """
    def procedure(*args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except Condition as e:
            raise as_application_error(e) from None
        if isinstance(result, defer.Deferred):
            result.addErrback(_answer)
        return result
    procedure.__name__ = getattr(function, "__name__", "procedure")
    procedure.__doc__ = function.__doc__
    return procedure


class RouterError(Condition):
    """A request the router refuses; the router answers it with an ``ERROR`` message."""


def _error_class(name, uri, doc):
    return type(name, (RouterError,), {"uri": uri, "__doc__": doc})


InvalidUri = _error_class("InvalidUri", INVALID_URI, "A URI breaks WAMP's rules.")
InvalidArgument = _error_class(
    "InvalidArgument", INVALID_ARGUMENT, "An option or argument has a bad value."
)
NoSuchProcedure = _error_class(
    "NoSuchProcedure", NO_SUCH_PROCEDURE, "Nothing is registered for the URI."
)
ProcedureAlreadyExists = _error_class(
    "ProcedureAlreadyExists",
    PROCEDURE_ALREADY_EXISTS,
    "A single registration already holds the URI.",
)
InvocationPolicyConflict = _error_class(
    "InvocationPolicyConflict",
    PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT,
    "A shared registration exists with another invocation policy.",
)
NoSuchRegistration = _error_class(
    "NoSuchRegistration", NO_SUCH_REGISTRATION, "Unknown registration id."
)
NoSuchSubscription = _error_class(
    "NoSuchSubscription", NO_SUCH_SUBSCRIPTION, "Unknown subscription id."
)
NoSuchSession = _error_class("NoSuchSession", NO_SUCH_SESSION, "Unknown session id.")
NotAuthorized = _error_class(
    "NotAuthorized", NOT_AUTHORIZED, "The authorizer denied the action."
)
AuthorizationFailed = _error_class(
    "AuthorizationFailed",
    AUTHORIZATION_FAILED,
    "The authorizer itself failed; its exception text is not disclosed.",
)
InvalidPayload = _error_class(
    "InvalidPayload", INVALID_PAYLOAD,
    "A message carries a value the receiving peer's serializer cannot represent.",
)
PayloadSizeExceeded = _error_class(
    "PayloadSizeExceeded", PAYLOAD_SIZE_EXCEEDED,
    "A message is larger than the receiving peer accepts.",
)
TooManyCalls = _error_class(
    "TooManyCalls", TOO_MANY_CALLS, "The session has as many calls in flight as it may.")
TooManySubscriptions = _error_class(
    "TooManySubscriptions", TOO_MANY_SUBSCRIPTIONS, "The session has as many subscriptions as it may.")
TooManyRegistrations = _error_class(
    "TooManyRegistrations", TOO_MANY_REGISTRATIONS, "The session has as many registrations as it may.")
Canceled = _error_class("Canceled", CANCELED, "The call was canceled.")
Timeout = _error_class("Timeout", TIMEOUT, "The call's timeout expired.")


class ProtocolViolation(Exception):
    """The peer broke the WAMP protocol; its session is closed with ABORT."""

    uri = PROTOCOL_VIOLATION
