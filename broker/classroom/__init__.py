"""Multi-user (classroom) rules: who may do what with whose kernels.

``roles`` names the roles; ``owners`` keeps which user owns each kernel (learnt
from the kernel host's ``webkernel.kernels.events``); ``authorizer`` is the
router's :class:`~broker.auth.IAuthorizer` for ``--users`` mode; ``policy``
is what the kernel host asks (which kernels a caller may list, the per-user
start quota, to whom a kernel's lifecycle events go). See docs/classroom.md.
"""
