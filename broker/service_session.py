"""What the service's own WAMP sessions (kernel host, notebooks) share."""

from autobahn.wamp.exception import ApplicationError


class QuietRefusals:
    """Mixin for an Autobahn session: errors answered to callers on purpose are logged at debug.

    Autobahn logs every exception a procedure raises as a warning; an
    ``ApplicationError`` here is a documented answer (``no_such_kernel``,
    ``path_outside_notebook_dir``, …), not the service's problem.
    """

    def onUserError(self, fail, msg):
        if isinstance(fail.value, ApplicationError):
            self.log.debug("answered {error}: {message}", error=fail.value.error, message=msg)
        else:
            super().onUserError(fail, msg)
