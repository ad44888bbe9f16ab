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

WAMP-CRA is not offered through Crossbar.io: Crossbar.io 26.10.1 derives the
salted key from the ``secret`` the authenticator returns (its
``router/auth/wampcra.py``), so it would need each user's password in clear,
which the users file does not keep (see docs/scaling.md).
"""

from autobahn.wamp.exception import ApplicationError

from broker.auth import AuthenticationFailed
from broker.users.authenticators import UserTicketAuthenticator

AUTHENTICATE = "webkernel.authenticate"


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
