"""A kernel host's policy: which kernels a caller may list, per-user quota, event audiences.

The kernel host knows no roles. The wiring hands it a policy object with the
three methods of :class:`OpenPolicy`, the default (single-token mode:
everyone sees everything, no per-user quota, one publication per event).
Multi-user mode's is :class:`broker.classroom.policy.ClassroomPolicy`.
"""


class OpenPolicy:
    """No per-user rules."""

    def visible(self, caller_authid, caller_authrole, model):
        """May this caller see this kernel (a model dict) in ``webkernel.kernels.list``?"""
        return True

    def quota(self, caller_authrole):
        """How many kernels a caller with this role may own at once (None: no limit)."""
        return None

    def audiences(self, model):
        """Publish options (dicts) for a lifecycle event of the kernel *model*: one publication each."""
        return [{}]
