"""The users file as Crossbar.io's dynamic authenticator (``webkernel.authenticate``).

Crossbar.io calls a dynamic ticket authenticator with ``(realm, authid,
details)``, the ticket in ``details["ticket"]``, and reads ``{authid, role}``
from its result or refuses with the URI and message of the error it raised.
Here the ticket is checked as :class:`~broker.users.authenticators.UserTicketAuthenticator`
checks it on webkernel's own router: the same users file, the same failure
throttle (per user and per address, the address from Crossbar.io's
``details["transport"]["peer"]``), and every refusal (unknown user, wrong
password, too many failures) is ``wamp.error.not_authorized`` with the one
message :data:`~broker.users.authenticators.REFUSED`.

A user removed from the file, or whose password or role changed, is signed
out of Crossbar.io by :func:`sign_out`: Crossbar.io's meta procedure
``wamp.session.kill_by_authid`` ends each of their sessions with the GOODBYE
reason ``webkernel.close.user_changed``, as webkernel's own router does (the
caller's role needs permission to call it, see docs/scaling.md).

WAMP-CRA is not offered through Crossbar.io: Crossbar.io 26.10.1 derives the
salted key from the ``secret`` the authenticator returns (its
``router/auth/wampcra.py``), so it would need each user's password in clear,
which the users file does not keep (see docs/scaling.md).
"""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.logger import Logger

from broker import errors
from broker.auth import AuthenticationFailed
from broker.users.authenticators import UserTicketAuthenticator

AUTHENTICATE = "webkernel.authenticate"
#: Crossbar.io's meta procedure ending every session of an authid
KILL_BY_AUTHID = "wamp.session.kill_by_authid"

log = Logger()


def crossbar_authenticate(directory, realm, authid, details):
    """Crossbar.io's principal ``{authid, role}`` for a user's ticket, or ApplicationError."""
    details = details if isinstance(details, dict) else {}
    sign_in = UserTicketAuthenticator(directory)
    sign_in.hello(realm, {"authid": authid, "transport": details.get("transport") or {}})
    try:
        principal = sign_in.authenticate(details.get("ticket"), {})
    except AuthenticationFailed as e:
        raise ApplicationError(e.uri, str(e))
    return {"authid": principal.authid, "role": principal.authrole}


@defer.inlineCallbacks
def sign_out(session, names):
    """End every Crossbar.io session of each user in *names* (removed, or changed in the file).

    Fires with ``{name: number of sessions ended}``; a name Crossbar.io refused
    to sign out (the role lacks the permission) is logged, with what to add
    to the configuration, and left out.
    """
    ended = {}
    for name in names:
        try:
            killed = yield session.call(KILL_BY_AUTHID, name, reason=errors.USER_CHANGED,
                                        message=errors.USER_CHANGED_MESSAGE)
        except ApplicationError as e:
            log.error("cannot sign {name} out of Crossbar.io ({uri}: {why}); give this role "
                      "permission to call {procedure}", name=name, uri=e.error,
                      why=e.args[0] if e.args else "", procedure=KILL_BY_AUTHID)
            continue
        ended[name] = len(killed or ())
    log.info("signed out of Crossbar.io, the users file having changed: {ended}",
             ended=", ".join(f"{name} ({count} sessions)" for name, count in ended.items()))
    return ended
