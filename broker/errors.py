"""Every error and close-reason URI the service sends, in one place.

The standard ``wamp.error.*`` and ``wamp.close.*`` URIs are taken from
Autobahn's ``ApplicationError`` where it defines them, so each URI literal
appears once in this code base. ``docs/protocol.md`` documents each of them:
when it is sent and what a client can do about it.

Exceptions raised inside the router are named for the condition and carry
their URI; the router turns them into ``ERROR`` (or ``ABORT``) messages.
"""

from autobahn.wamp.exception import ApplicationError

# -- session lifecycle ------------------------------------------------------
# (the spec's wamp.close.* names; Autobahn still has older wamp.error.* ones)
CLOSE_NORMAL = "wamp.close.normal"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_SUCH_REALM = ApplicationError.NO_SUCH_REALM
NOT_AUTHORIZED = ApplicationError.NOT_AUTHORIZED
AUTHORIZATION_FAILED = ApplicationError.AUTHORIZATION_FAILED
AUTHENTICATION_FAILED = ApplicationError.AUTHENTICATION_FAILED
NO_AUTH_METHOD = ApplicationError.NO_AUTH_METHOD
#: multi-user mode: the session's user was removed, or their password or role changed
USER_CHANGED = "webkernel.close.user_changed"
#: the session's unsent output passed the configured limit
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
OPTION_NOT_ALLOWED = "wamp.error.option_not_allowed"
#: what Autobahn answers for a procedure that raised something not an ApplicationError
RUNTIME_ERROR = "wamp.error.runtime_error"
#: a RESULT too large for the caller's transport (its message size limit)
PAYLOAD_SIZE_EXCEEDED = ApplicationError.PAYLOAD_SIZE_EXCEEDED

# -- notebook files (docs/notebook.md) --------------------------------------
#: ``notebooks.get`` of a file larger than ``--max-notebook-size``; nothing is read
NOTEBOOK_TOO_LARGE = "webkernel.error.notebook_too_large"


class RouterError(Exception):
    """A request the router refuses; becomes an ``ERROR`` message.

    ``uri`` is the error URI, the first argument a message for a person.
    """

    uri = None

    def __init__(self, message, *args, **kwargs):
        super().__init__(message)
        self.message = message
        self.args_ = [message, *args]
        self.kwargs = kwargs


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
Canceled = _error_class("Canceled", CANCELED, "The call was canceled.")
Timeout = _error_class("Timeout", TIMEOUT, "The call's timeout expired.")


class ProtocolViolation(Exception):
    """The peer broke the WAMP protocol; its session is closed with ABORT."""

    uri = PROTOCOL_VIOLATION
