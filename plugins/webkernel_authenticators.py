"""The built-in WAMP authentication methods: ``ticket`` (the service token) and ``anonymous``."""

import hmac
from itertools import count

from twisted.plugin import IPlugin
from zope.interface import implementer, provider

from broker.auth import (
    AuthenticationFailed,
    IAuthenticator,
    IAuthenticatorFactory,
    Principal,
)

_serial = count(1)


def _authid(requested, prefix):
    return requested if isinstance(requested, str) and requested else f"{prefix}-{next(_serial)}"


@implementer(IAuthenticator)
class TicketAuthenticator:
    """WAMP-Ticket: the ticket must equal the service token; any authid is accepted."""

    authmethod = "ticket"

    def __init__(self, token):
        self._token = token
        self._authid = None

    def hello(self, realm, details):
        self._authid = _authid(details.get("authid"), "user")
        return {}

    def authenticate(self, signature, extra):
        if not isinstance(signature, str) or not hmac.compare_digest(
            signature.encode("utf-8"), self._token.encode("utf-8")
        ):
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
        return Principal(_authid(details.get("authid"), "anonymous"), "anonymous", "anonymous")

    def authenticate(self, signature, extra):
        raise AuthenticationFailed("anonymous authentication takes no AUTHENTICATE")


@provider(IPlugin, IAuthenticatorFactory)
class ticket:
    """Enabled when the service has a token."""

    authmethod = "ticket"

    @staticmethod
    def build(config):
        token = config.get("token")
        return TicketAuthenticator(token) if token else None


@provider(IPlugin, IAuthenticatorFactory)
class anonymous:
    """Enabled by ``--anonymous``."""

    authmethod = "anonymous"

    @staticmethod
    def build(config):
        return AnonymousAuthenticator() if config.get("anonymous") else None
