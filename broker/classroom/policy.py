"""What the kernel host asks in ``--users`` mode: listing, quota, event audiences.

The kernel host knows nothing of roles; the wiring (``broker/tap.py``) hands
it a policy with the three methods of :class:`broker.kernel.policy.OpenPolicy`
(single-token mode's); :class:`ClassroomPolicy` is multi-user mode's.
"""

from broker.classroom import roles

DEFAULT_MAX_KERNELS_PER_USER = 2


class ClassroomPolicy:
    """Students see and hear of their own kernels and those shared with them, and own at most ``max_per_user``."""

    def __init__(self, max_per_user=DEFAULT_MAX_KERNELS_PER_USER):
        self.max_per_user = max_per_user

    def visible(self, caller_authid, caller_authrole, model):
        if caller_authrole in roles.SEE_ALL:
            return True
        return caller_authrole == roles.STUDENT and caller_authid in _people(model)

    def quota(self, caller_authrole):
        return self.max_per_user if caller_authrole == roles.STUDENT else None

    def audiences(self, model):
        """Those who see every kernel (but its people), then its owner and those it is shared with.

        Two publications because WAMP's eligibility lists are combined with
        AND (Crossbar.io does the same): one publication cannot reach "the
        owner or a teacher".
        """
        everyone = {"eligible_authrole": list(roles.SEE_ALL)}
        people = _people(model)
        if not people:
            return [everyone]
        return [dict(everyone, exclude_authid=people), {"eligible_authid": people}]


def _people(model):
    """The owner and the users the kernel is shared with, owner first."""
    owner = model.get("owner")
    return ([owner] if owner is not None else []) + sorted(
        user for user in (model.get("shared") or {}) if user != owner)
