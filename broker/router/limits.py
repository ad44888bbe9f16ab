"""How much one session may hold in the router: calls in flight, subscriptions, registrations.

Each is bounded per session so that one client cannot make the router's work
or memory grow without limit: a call past the bound is answered
``webkernel.error.too_many_calls``, a subscription or registration past it
``webkernel.error.too_many_subscriptions`` / ``too_many_registrations``, at
once, and nothing else changes. Wildcard patterns have a lower bound of their
own: matching costs one lookup per distinct wildcard *shape* (see
:mod:`broker.router.index`), so this bound caps what one session adds to every
publication's matching.

Sessions the service attaches in-process (its kernel host, notebook files,
JSON-RPC workspaces) are the service's own code, bounded by their own limits
(``--max-kernels`` …): they get :data:`UNLIMITED`.
"""

import attr

from broker import errors

DEFAULT_MAX_PENDING_CALLS = 1000
DEFAULT_MAX_SUBSCRIPTIONS = 10_000
DEFAULT_MAX_REGISTRATIONS = 10_000
DEFAULT_MAX_WILDCARDS = 100


@attr.s(frozen=True)
class SessionLimits:
    """Per-session bounds (None: unbounded)."""

    #: calls the session made that are not answered yet
    calls = attr.ib(default=DEFAULT_MAX_PENDING_CALLS)
    subscriptions = attr.ib(default=DEFAULT_MAX_SUBSCRIPTIONS)
    registrations = attr.ib(default=DEFAULT_MAX_REGISTRATIONS)
    #: wildcard subscriptions, and wildcard registrations (each)
    wildcards = attr.ib(default=DEFAULT_MAX_WILDCARDS)


UNLIMITED = SessionLimits(None, None, None, None)


def check_calls(session, in_flight):
    """Raise TooManyCalls if *session* may not make one more call."""
    limit = session.limits.calls
    if limit is not None and in_flight >= limit:
        raise errors.TooManyCalls(
            f"session {session.id} already has {in_flight} calls waiting for an answer, the "
            f"most a session may have (--max-pending-calls): call again once some are answered")


def check_observations(session, what, held, wildcards_held, wildcard):
    """Raise TooManySubscriptions/Registrations if *session* may not observe one more URI.

    *what* is ``"subscriptions"`` or ``"registrations"``; *held* how many the
    session has, *wildcards_held* how many of them are wildcard patterns;
    *wildcard* whether the new one is.
    """
    error = errors.TooManySubscriptions if what == "subscriptions" else errors.TooManyRegistrations
    limit = getattr(session.limits, what)
    if limit is not None and held >= limit:
        raise error(f"session {session.id} already has {held} {what}, the most a session may "
                    f"have (--max-{what})")
    limit = session.limits.wildcards
    if wildcard and limit is not None and wildcards_held >= limit:
        raise error(f"session {session.id} already has {wildcards_held} wildcard {what}, the "
                    f"most a session may have (--max-wildcards): use exact or prefix URIs")
