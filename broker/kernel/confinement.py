"""Running a kernel as its user's own OS account, within per-kernel limits.

In multi-user mode the launcher does not exec a kernelspec's command itself:
it runs :data:`CONFINE`, a short program given to the service's own
interpreter with ``-I -S`` (nothing on a path a user controls is imported),
which, still as root and before any code of the kernel runs:

1. starts a new session (``setsid``), as every kernel launch does;
2. sets the kernel's resource limits, soft and hard alike (the kernel cannot
   raise them again): ``RLIMIT_AS`` (memory: an allocation past it is a
   ``MemoryError``), ``RLIMIT_NPROC`` (processes and threads of the account,
   all its kernels together), ``RLIMIT_NOFILE`` (open files) and
   ``RLIMIT_FSIZE`` (largest file written), and its nice value (CPU priority);
3. drops every supplementary group, then sets the account's gid and uid
   (real, effective and saved: nothing can be taken back) and checks that it
   cannot become root again;
4. changes to the account's working directory and execs the kernel.

``RLIMIT_NPROC`` does not bind root and is checked against the real uid, so it
is set before the switch and takes hold at the switch: an account already at
its limit cannot exec another kernel (the launch fails, its log says why).

:class:`Confinement` holds the limits and builds that command and the
kernel's environment: a short list of variables kept from the service's (no
service secrets reach a kernel), ``HOME`` and ``USER`` the account's.
"""

import attr

#: RLIMIT_AS: the kernel's address space (2 GiB)
DEFAULT_MEMORY = 2 * 1024 ** 3
#: RLIMIT_NPROC: processes and threads of one account (all its kernels)
DEFAULT_PROCESSES = 512
#: RLIMIT_NOFILE: open files of one kernel
DEFAULT_OPEN_FILES = 1024
#: RLIMIT_FSIZE: the largest file a kernel may write (1 GiB)
DEFAULT_FILE_SIZE = 1024 ** 3
#: the kernel's nice value: below the service, so the service stays responsive
DEFAULT_NICE = 5
#: the service's environment variables a confined kernel keeps
KEPT_VARIABLES = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES",
                  "LC_NUMERIC", "LC_TIME", "TZ", "TERM", "PYDEVD_DISABLE_FILE_VALIDATION")
#: the PATH of a kernel when the service has none
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

#: defines ``confine(uid, gid, nice, workdir, limits)``: steps 1-4 but the exec (uid -1: no
#: switch; limits "NAME=value,..."). The fork server's template runs the same source in
#: each forked child (:mod:`broker.kernel.fork_template`), before any kernel code.
CONFINE_FUNCTION = """\
def confine(uid, gid, nice, workdir, limits):
    import os, resource, sys
    try:
        os.setsid()
    except OSError:
        pass
    for item in filter(None, limits.split(",")):
        name, value = item.split("=")
        resource.setrlimit(getattr(resource, name), (int(value), int(value)))
    if nice:  # per thread on Linux: every thread of the process (a pooled kernel has several)
        for task in os.listdir("/proc/self/task"):
            now = os.getpriority(os.PRIO_PROCESS, int(task))
            os.setpriority(os.PRIO_PROCESS, int(task), min(now + nice, 19))
    if uid >= 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
            sys.exit("webkernel: could not switch to uid %d gid %d" % (uid, gid))
        try:
            os.setuid(0)
        except OSError:
            pass
        else:
            sys.exit("webkernel: the kernel could become root again")
    os.chdir(workdir)
"""

#: argv: uid gid nice workdir limits executable argv... (see CONFINE_FUNCTION)
CONFINE = CONFINE_FUNCTION + """\
import os, sys
confine(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
os.execv(sys.argv[6], sys.argv[7:])
"""


@attr.s(frozen=True)
class Limits:
    """Per-kernel resource limits (bytes, counts, a nice value); None: not limited."""

    memory = attr.ib(default=DEFAULT_MEMORY)
    processes = attr.ib(default=DEFAULT_PROCESSES)
    open_files = attr.ib(default=DEFAULT_OPEN_FILES)
    file_size = attr.ib(default=DEFAULT_FILE_SIZE)
    nice = attr.ib(default=DEFAULT_NICE)

    def rlimits(self, switching):
        """``NAME=value`` pairs for :data:`CONFINE`; NPROC only when the account is switched.

        (Without a switch RLIMIT_NPROC would count the service's own processes.)
        """
        pairs = [("RLIMIT_AS", self.memory), ("RLIMIT_NOFILE", self.open_files),
                 ("RLIMIT_FSIZE", self.file_size)]
        if switching:
            pairs.append(("RLIMIT_NPROC", self.processes))
        return ",".join(f"{name}={int(value)}" for name, value in pairs if value is not None)


@attr.s(frozen=True)
class Confinement:
    """How kernels are confined: the limits, and whether they switch to their user's account."""

    limits = attr.ib(factory=Limits)
    #: False with --unsafe-shared-account: kernels keep the service's account
    switch_accounts = attr.ib(default=True)

    def arguments(self, account):
        """``confine``'s arguments for *account*: ``[uid, gid, nice, workdir, limits]``."""
        uid, gid = (account.uid, account.gid) if self.switch_accounts else (-1, -1)
        return [uid, gid, int(self.limits.nice or 0), account.home,
                self.limits.rlimits(self.switch_accounts)]

    def command(self, python, account, executable, argv):
        """The spawn argv that confines, then execs *executable* with *argv* as *account*."""
        return [python, "-I", "-S", "-c", CONFINE, *map(str, self.arguments(account)),
                executable, *argv]

    def environment(self, service_env, account):
        """A kernel's base environment: the kept variables, and the account's HOME and USER."""
        env = {name: service_env[name] for name in KEPT_VARIABLES if name in service_env}
        env.setdefault("PATH", DEFAULT_PATH)
        env.update(HOME=account.home, USER=account.name, LOGNAME=account.name,
                   SHELL="/bin/sh")
        return env
