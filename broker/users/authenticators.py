"""Signing in as a user of the users file: WAMP-CRA and WAMP-Ticket.

* **WAMP-CRA** (salted): the CHALLENGE carries a JSON challenge string and
  the user's ``salt``, ``iterations`` and ``keylen``; the client derives the
  key from the password and signs the challenge; the router checks the
  signature with the stored key. The password never crosses the wire.
* **Ticket**: the password is the ticket; the router derives the key again
  and compares.

The authid is the user's name and nothing else; the role is the one in the
file. Every refusal (unknown name, wrong password, another user's password,
too many failures) is ``wamp.error.not_authorized`` with the same message,
and a name that is no user gets a challenge like a real one (stable salt),
so a client cannot tell which names exist. Failures are counted per user and
per address (:mod:`broker.users.throttle`).
"""

import hmac
import json
import secrets

from autobahn.wamp.auth import compute_wcs
from zope.interface import implementer

from broker.auth import AuthenticationFailed, IAuthenticator, Principal
from broker.users import store
from broker.users.throttle import address_of

#: the one message of every refused sign-in
REFUSED = "wrong user name or password (or too many failed attempts: wait and try again)"
PROVIDER = "users_file"


class _UserSignIn:
    """What both methods share: who is trying, from where, and the throttle."""

    def __init__(self, directory):
        self.directory = directory
        self.name = None
        self.keys = ()

    def _begin(self, details):
        name = details.get("authid")
        self.name = name if isinstance(name, str) else ""
        peer = (details.get("transport") or {}).get("peer")
        self.keys = (f"user:{_counted_as(self.name)}", f"address:{address_of(peer)}")

    def _finish(self, user, proof_ok):
        """The principal if *proof_ok* for a real *user*, else count the failure and refuse."""
        throttle = self.directory.throttle
        if user is None or not proof_ok:
            throttle.failed(self.keys)
            raise AuthenticationFailed(REFUSED)
        throttle.succeeded(self.keys[0])
        return Principal(user.name, user.role, self.authmethod, PROVIDER)

    def _throttled(self):
        if self.directory.throttle.wait(self.keys) > 0:
            raise AuthenticationFailed(REFUSED)


def _counted_as(name):
    """The name failures are counted under: a name that cannot be a user's counts as ``?``.

    (So a flood of long made-up names cannot fill the table with big keys.)
    """
    try:
        return store.check_name(name)
    except store.BadName:
        return "?"


@implementer(IAuthenticator)
class UserCraAuthenticator(_UserSignIn):
    """WAMP-CRA against the users file."""

    authmethod = "wampcra"

    def __init__(self, directory):
        super().__init__(directory)
        self.user = None
        self.challenge = None

    def hello(self, realm, details):
        self._begin(details)
        self.user = self.directory.get(self.name)
        shown = self.user or self.directory.stand_in(self.name)
        self.challenge = json.dumps({
            "authid": self.name, "authmethod": self.authmethod, "authprovider": PROVIDER,
            "nonce": secrets.token_urlsafe(24),
            "timestamp": self.directory.clock.seconds(),
        }, sort_keys=True)
        return {"challenge": self.challenge, **shown.challenge_extra()}

    def authenticate(self, signature, extra):
        self._throttled()
        checked = self.user or self.directory.stand_in(self.name)  # the same work either way
        expected = compute_wcs(checked.key, self.challenge)
        given = signature.encode("utf-8", "replace") if isinstance(signature, str) else b""
        ok = hmac.compare_digest(expected, given) and self.user is not None
        return self._finish(self.user, ok)


@implementer(IAuthenticator)
class UserTicketAuthenticator(_UserSignIn):
    """WAMP-Ticket against the users file: the ticket is the password."""

    authmethod = "ticket"

    def hello(self, realm, details):
        self._begin(details)
        return {}

    def authenticate(self, signature, extra):
        self._throttled()
        user = self.directory.get(self.name)
        checked = user or self.directory.stand_in(self.name)  # the same work either way
        ok = self.directory.password_ok(checked, signature)
        return self._finish(user, ok)
