"""The built-in WAMP authentication methods.

* ``ticket``: the service token (single-token mode), or in multi-user mode
  (``--users``) a user's password; in both, the authid ``webkernel_host``
  with the ``--host-token``.
* ``wampcra``: multi-user mode only, a user's password by challenge-response.
* ``anonymous``: ``--anonymous`` only.
"""

import hmac
import secrets

from twisted.plugin import IPlugin
from zope.interface import implementer, provider

from broker.auth import (
    HOST_AUTHID,
    KERNEL_HOST_ROLE,
    AuthenticationFailed,
    IAuthenticator,
    IAuthenticatorFactory,
    Principal,
)
from broker.users.authenticators import UserCraAuthenticator, UserTicketAuthenticator

#: random hex digits in an authid the service picks (``user-3f9a0c1b7e2d``)
PICKED_AUTHID_BYTES = 6


def _authid(requested, prefix):
    """The requested authid, else a random one: never reused, not even after a restart.

    (A counter restarted at 1 with each service start, so a client reconnecting
    under the authid it was given could share it with a newcomer.)
    """
    if isinstance(requested, str) and requested:
        return requested
    return f"{prefix}-{secrets.token_hex(PICKED_AUTHID_BYTES)}"


def _matches(signature, secret):
    return isinstance(signature, str) and secret is not None and hmac.compare_digest(
        signature.encode("utf-8"), secret.encode("utf-8"))


@implementer(IAuthenticator)
class TicketAuthenticator:
    """WAMP-Ticket: the ticket must equal the service token; any authid is accepted.

    The one exception is the authid ``webkernel_host``: a kernel host joining
    from another process, which must present the router's *host token*
    (``--host-token``) and gets the ``webkernel_host`` role.
    """

    authmethod = "ticket"

    def __init__(self, token, host_token=None):
        self._token = token
        self._host_token = host_token
        self._authid = None

    def hello(self, realm, details):
        self._authid = _authid(details.get("authid"), "user")
        return {}

    def authenticate(self, signature, extra):
        if self._authid == HOST_AUTHID:
            if not _matches(signature, self._host_token):
                raise AuthenticationFailed(
                    "a kernel host must present the router's --host-token as its ticket")
            return Principal(HOST_AUTHID, KERNEL_HOST_ROLE, "ticket")
        if not _matches(signature, self._token):
            raise AuthenticationFailed(
                "wrong ticket: use the service token (the token= part of the URL "
                "the service logged at start)"
            )
        return Principal(self._authid, "user", "ticket")


@implementer(IAuthenticator)
class AnonymousAuthenticator:
    """An open realm (``--anonymous``): everyone joins with the role ``anonymous``."""

    authmethod = "anonymous"

    def hello(self, realm, details):
        if details.get("authid") == HOST_AUTHID:
            raise AuthenticationFailed("the authid webkernel_host needs the ticket method")
        return Principal(_authid(details.get("authid"), "anonymous"), "anonymous", "anonymous")

    def authenticate(self, signature, extra):
        raise AuthenticationFailed("anonymous authentication takes no AUTHENTICATE")


@implementer(IAuthenticator)
class UsersOrHostTicketAuthenticator:
    """Multi-user mode's ticket: a user's password, or the host token for ``webkernel_host``.

    The service token admits no one here.
    """

    authmethod = "ticket"

    def __init__(self, directory, host_token):
        self._users = UserTicketAuthenticator(directory)
        self._host = TicketAuthenticator(None, host_token)
        self._chosen = None

    def hello(self, realm, details):
        is_host = details.get("authid") == HOST_AUTHID
        self._chosen = self._host if is_host else self._users
        return self._chosen.hello(realm, details)

    def authenticate(self, signature, extra):
        return self._chosen.authenticate(signature, extra)


@provider(IPlugin, IAuthenticatorFactory)
class ticket:
    """Enabled when the service has a token, or users (``--users``)."""

    authmethod = "ticket"

    @staticmethod
    def build(config):
        if config.get("users") is not None:
            return UsersOrHostTicketAuthenticator(config["users"], config.get("host_token"))
        token = config.get("token")
        return TicketAuthenticator(token, config.get("host_token")) if token else None


@provider(IPlugin, IAuthenticatorFactory)
class wampcra:
    """Enabled in multi-user mode (``--users``)."""

    authmethod = "wampcra"

    @staticmethod
    def build(config):
        users = config.get("users")
        return UserCraAuthenticator(users) if users is not None else None


@provider(IPlugin, IAuthenticatorFactory)
class anonymous:
    """Enabled by ``--anonymous``."""

    authmethod = "anonymous"

    @staticmethod
    def build(config):
        return AnonymousAuthenticator() if config.get("anonymous") else None
