"""What the kernel host asks in ``--users`` mode: listing, quota, event audiences.

The kernel host knows nothing of roles; the wiring (``broker/tap.py``) hands
it a policy with the three methods of :class:`broker.kernel.policy.OpenPolicy`
(single-token mode's); :class:`ClassroomPolicy` is multi-user mode's.
"""

from broker.classroom import roles

DEFAULT_MAX_KERNELS_PER_USER = 2


class ClassroomPolicy:
    """Students see and hear of their own kernels and start at most ``max_per_user``."""

    def __init__(self, max_per_user=DEFAULT_MAX_KERNELS_PER_USER):
        self.max_per_user = max_per_user

    def visible(self, caller_authid, caller_authrole, model):
        if caller_authrole in roles.SEE_ALL:
            return True
        return caller_authrole == roles.STUDENT and model.get("owner") == caller_authid

    def quota(self, caller_authrole):
        return self.max_per_user if caller_authrole == roles.STUDENT else None

    def audiences(self, owner):
        """Those who see every kernel (but the owner), then the owner alone.

        Two publications because WAMP's eligibility lists are combined with
        AND (Crossbar.io does the same): one publication cannot reach "the
        owner or a teacher".
        """
        everyone = {"eligible_authrole": list(roles.SEE_ALL)}
        if owner is None:
            return [everyone]
        return [dict(everyone, exclude_authid=[owner]), {"eligible_authid": [owner]}]
