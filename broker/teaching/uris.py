"""Every URI of the live classroom API (docs/classroom.md)."""

CLASS_PREFIX = "webkernel.class."
#: a student asks for help (optionally with a message)
HELP = "webkernel.class.help"
#: a teacher clears a student's help request
HELP_CLEAR = "webkernel.class.help_clear"
#: teachers and observers: every user, signed in or not, with their kernels
ROSTER = "webkernel.class.roster"
#: a teacher runs a cell in every student's kernels
BROADCAST = "webkernel.class.broadcast"
#: a teacher copies a notebook of theirs into each student's folder (per-user folders needed)
HAND_OUT = "webkernel.class.hand_out"
#: a teacher gathers a notebook of each student's into collected/<stem>/ (per-user folders needed)
COLLECT = "webkernel.class.collect"
#: what changes in the roster (to teachers and observers), and culled kernels (to their owner too)
EVENTS = "webkernel.class.events"

#: procedures only a teacher may call
TEACHER_PROCEDURES = frozenset({HELP_CLEAR, BROADCAST, HAND_OUT, COLLECT})
#: procedures teachers and observers may call
WATCHER_PROCEDURES = frozenset({ROSTER})
#: procedures students may call
STUDENT_PROCEDURES = frozenset({HELP})

#: what the classroom session subscribes to: the router's meta events of sessions joining and
#: leaving, and (wildcard) the two outputs of every kernel the roster needs
ON_JOIN = "wamp.session.on_join"
ON_LEAVE = "wamp.session.on_leave"
EXECUTE_INPUTS = "webkernel.kernel..iopub.execute_input"
ERRORS = "webkernel.kernel..iopub.error"
#: the meta procedures the culler asks who watches a kernel
SUBSCRIPTION_MATCH = "wamp.subscription.match"
SUBSCRIPTION_GET = "wamp.subscription.get"
COUNT_SUBSCRIBERS = "wamp.subscription.count_subscribers"
#: the kernel procedures the classroom session calls (broadcast, culling)
KERNEL_CALLS = frozenset({"execute", "shutdown"})
