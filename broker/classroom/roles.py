"""The roles of multi-user mode, and the service's own."""

from broker.auth import KERNEL_HOST_ROLE, TEACHING_ROLE

STUDENT = "student"
TEACHER = "teacher"
OBSERVER = "observer"
#: the in-process session that learns kernel owners from webkernel.kernels.events
TRACKER_ROLE = "webkernel_classroom"
TRACKER_AUTHID = "webkernel_classroom"
HOST = KERNEL_HOST_ROLE
#: the in-process live classroom session (broker/teaching)
TEACHING = TEACHING_ROLE
#: roles that see every kernel and its lifecycle events
SEE_ALL = (TEACHER, OBSERVER, TRACKER_ROLE, TEACHING)
