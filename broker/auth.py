"""Authentication and authorization seams of the router, and the service's default policy.

The router imports this module; it imports nothing of the router.

* An :class:`IAuthenticator` handles one WAMP authentication method
  (``ticket``, ``anonymous``, …). Drop-in implementations live in the
  top-level ``plugins`` package and are found with ``twisted.plugin.getPlugins``
  through :class:`IAuthenticatorFactory`.
* An :class:`IAuthorizer` is consulted for every register, call, subscribe and
  publish. Its contract is Crossbar.io's dynamic authorizer's:
  ``authorize(session, uri, action, options)`` where *session* is a dict with
  ``session``, ``authid``, ``authrole``, ``authmethod``, ``authprovider`` and
  ``authextra``; *options* carries ``match`` for pattern subscriptions and
  registrations. It returns (or returns a Deferred of) a bool or a dict
  ``{"allow": bool, "disclose": bool, "cache": bool, "namespace": str}``
  (``namespace``, our addition: the decision holds for every URI in it; see
  :mod:`broker.router.authorizations`). Authorizers other than
  :class:`DefaultAuthorizer` are plugins found through
  :class:`IAuthorizerFactory` (``plugins/webkernel_authorizers.py``).
"""

import attr
from zope.interface import Attribute, Interface, implementer

from broker import errors

#: the role of a kernel host: the in-process one, or one in another process
#: that joins with the router's --host-token
KERNEL_HOST_ROLE = "webkernel_host"
#: the role of the service's in-process notebook session
NOTEBOOKS_ROLE = "webkernel_notebooks"
#: the role of the service's in-process live classroom session (broker/teaching, --users mode)
TEACHING_ROLE = "webkernel_teaching"
#: the namespace of the notebook procedures, the only URIs NOTEBOOKS_ROLE may register
NOTEBOOKS_NAMESPACE = "webkernel.notebooks"
#: the authid a kernel host in another process joins with (ticket: --host-token)
HOST_AUTHID = "webkernel_host"
#: the authid a notebook service in another process joins Crossbar.io with (``--notebooks-only``)
NOTEBOOKS_AUTHID = "webkernel_notebooks"

ACTIONS = ("register", "call", "subscribe", "publish")


@attr.s(frozen=True)
class Principal:
    """Who a session is, once authenticated."""

    authid = attr.ib()
    authrole = attr.ib()
    authmethod = attr.ib()
    authprovider = attr.ib(default="static")
    authextra = attr.ib(default=attr.Factory(dict))


class AuthenticationFailed(Exception):
    """The credentials are wrong; the message is shown to the client (ABORT ``uri``)."""

    uri = errors.NOT_AUTHORIZED


class IAuthenticator(Interface):
    """One WAMP authentication method for one realm."""

    authmethod = Attribute("The WAMP authmethod name, e.g. 'ticket'.")

    def hello(realm, details):
        """Start authenticating a HELLO.

        Return a :class:`Principal` to welcome the session at once, or a
        dict of challenge ``extra`` to send a CHALLENGE; raise
        :class:`AuthenticationFailed` to refuse.
        """

    def authenticate(signature, extra):
        """Check the AUTHENTICATE answer; return a :class:`Principal` or raise."""


class IAuthenticatorFactory(Interface):
    """A drop-in source of authenticators (a ``twisted.plugin`` plugin)."""

    authmethod = Attribute("The WAMP authmethod name the authenticators handle.")

    def build(config):
        """A fresh :class:`IAuthenticator` for one session, given the service config.

        ``config`` is a dict with at least ``token`` and ``anonymous``.
        Return None when this method is not enabled by the config.
        """


class IAuthorizerFactory(Interface):
    """A drop-in source of an authorizer (a ``twisted.plugin`` plugin), chosen by name."""

    name = Attribute("The name the wiring chooses the authorizer by, e.g. 'classroom'.")

    def build(config):
        """The :class:`IAuthorizer` for the service config (a dict)."""


class IAuthorizer(Interface):
    """Decides whether a session may perform an action on a URI."""

    def authorize(session, uri, action, options):
        """Return a bool or ``{allow, disclose, cache, namespace}``, or a Deferred of one."""


@implementer(IAuthorizer)
class DefaultAuthorizer:
    """Everything within the realm for an authenticated session, except two
    reserved namespaces: no client may register or publish under ``wamp.``
    (the router's own meta API), and only the service's kernel host may
    register or publish under ``webkernel.`` (so no client can impersonate a
    kernel or inject output into another client's view). The notebook
    session may do one thing: register exact URIs under
    ``webkernel.notebooks.`` (no calls, subscriptions or publications).

    Callers and publishers are disclosed (the kernel host needs to know who
    caused an output). A permission holds for the whole top-level namespace
    of the URI (``webkernel`` for ``webkernel.kernel.<id>.iopub.stream``), so
    the router keeps one decision per namespace and action, not one per URI
    (the kernel host publishes on a new topic per kernel and message type).
    Denials are not kept.
    """

    reserved = ("wamp", "webkernel")

    def authorize(self, session, uri, action, options):
        match = (options or {}).get("match", "exact")
        if session["authrole"] == NOTEBOOKS_ROLE:  # a bool: not kept for the namespace
            return action == "register" and match == "exact" and uri.startswith(
                NOTEBOOKS_NAMESPACE + ".")
        if action in ("register", "publish"):
            if could_cover(uri, match, "wamp"):
                return False
            if could_cover(uri, match, "webkernel"):
                if session["authrole"] != KERNEL_HOST_ROLE:
                    return False
        # the same answer for every URI of this namespace: only whole namespaces are reserved
        return {"allow": True, "disclose": True, "cache": True, "namespace": uri.split(".", 1)[0]}


def could_cover(uri, match, namespace):
    """True if *uri* under *match* could match a URI in *namespace*.

    ``wamp.x`` (exact), the prefix ``wa`` and the wildcard ``.session.count``
    all could reach the ``wamp`` namespace; ``com.example`` cannot.
    """
    if match == "prefix":
        return has_prefix(uri, namespace) or (namespace + ".").startswith(uri)
    if match == "wildcard":
        first = uri.split(".", 1)[0]
        return first in ("", namespace)
    return has_prefix(uri, namespace)


def has_prefix(uri, namespace):
    """True if *uri* is *namespace* or lies below it (``wamp`` covers ``wamp.x``).

    What a decision's ``namespace`` covers: the router keeps decisions by it.
    """
    return uri == namespace or uri.startswith(namespace + ".")
