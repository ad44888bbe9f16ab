"""Each user's own OS account and working directory, for their kernels to run as and in.

:class:`UserAccounts` answers "which account do *user*'s kernels run as?":

* the account the users file maps the user to (``"account": "alice"``), which
  must exist and may not be root or the service's own; or else
* ``<prefix><user>`` (``--user-prefix``, default ``wk-``), created on first
  use with a uid (and a group of the same id) from ``--uid-range``, as a
  system account with no login shell and no home of its own made. An account
  of that name that already exists is used if its uid is in the range
  (so creation is idempotent across restarts) and refused otherwise.

The working directory is ``<home root>/<user>`` (``--home-root``), mode 0700,
owned by the account: the kernel's cwd and HOME. The home root itself is the
service's, mode 0711 (users reach their own directory, cannot list others').

Creating an account runs ``groupadd``/``useradd`` (tens of milliseconds), in
a thread, one creation at a time (so two users never pick the same uid).
:class:`SystemAccounts` is the real system; tests give a fake.
"""

import grp
import hashlib
import os
import pwd
import re
import stat
import subprocess

import attr
from twisted.internet import defer, threads
from twisted.logger import Logger

from broker.users.store import BadName, check_name

DEFAULT_PREFIX = "wk-"
DEFAULT_UID_RANGE = (20000, 29999)
#: longest account name useradd takes
MAX_ACCOUNT_NAME = 32
#: what --user-prefix may be (account names: lower case, no leading digit or dash)
PREFIX = re.compile(r"[a-z_][a-z0-9_-]{0,15}")
#: what an existing account mapped in the users file may be called
ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


class NoAccount(Exception):
    """A user's kernels cannot have an OS account; the message says why and what to do."""


@attr.s(frozen=True)
class Account:
    """An OS account a kernel runs as, and its working directory."""

    name = attr.ib()
    uid = attr.ib()
    gid = attr.ib()
    home = attr.ib()


def check_owner(user, what):
    """Raise NoAccount (its kernels cannot get *what*) unless *user* is a possible user name."""
    try:
        check_name(user)
    except BadName as e:
        raise NoAccount(f"kernels of {user!r} cannot get {what}: {e}") from None


def account_name(prefix, user):
    """``<prefix><user>``, shortened with a digest of *user* past 32 characters."""
    name = prefix + user
    if len(name) <= MAX_ACCOUNT_NAME:
        return name
    digest = hashlib.sha256(user.encode("utf-8")).hexdigest()[:6]
    return name[:MAX_ACCOUNT_NAME - 7] + "-" + digest


def parse_uid_range(text):
    """``"20000-29999"`` as ``(20000, 29999)``; ``ValueError`` if it is not a range of non-root uids."""
    low, sep, high = str(text).partition("-")
    try:
        low, high = int(low), int(high)
    except ValueError:
        raise ValueError(f"bad uid range {text!r}: use LOW-HIGH, e.g. 20000-29999") from None
    if not sep or not 0 < low <= high < 2 ** 31:
        raise ValueError(f"bad uid range {text!r}: use LOW-HIGH with 0 < LOW <= HIGH")
    return low, high


class SystemAccounts:
    """The machine's account database and directories (the real thing; root needed to change)."""

    def lookup(self, name):
        """``(uid, gid)`` of account *name*, or None."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def ids_in_use(self):
        """Every uid and gid the account and group databases hold."""
        return {e.pw_uid for e in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}

    def create(self, name, uid, comment):
        """Create system account *name* with uid *uid* and a group of the same name and id."""
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            self._run(["groupadd", "--system", "--gid", str(uid), name])
            gid = uid
        self._run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                   "--home-dir", "/nonexistent", "--uid", str(uid), "--gid", str(gid),
                   "--comment", comment, name])

    def _run(self, argv):
        try:
            subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", None) or str(e)
            raise NoAccount(f"{' '.join(argv[:1])} failed: {detail.strip()}") from None

    def ensure_home(self, path, uid, gid):
        """Make *path* a directory of mode 0700 owned by *uid*:*gid* (never following a symlink)."""
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise NoAccount(f"{path} is not a directory: remove it, it is a user's working "
                            f"directory")
        os.chown(path, uid, gid, follow_symlinks=False)
        os.chmod(path, 0o700)


class UserAccounts:
    """Which OS account, and which working directory, each user's kernels get."""

    log = Logger()

    def __init__(self, home_root, prefix=DEFAULT_PREFIX, uid_range=DEFAULT_UID_RANGE,
                 mapped=None, system=None, run_blocking=None, service_uid=None):
        self.home_root = os.path.abspath(home_root)
        self.prefix = prefix
        self.uid_range = uid_range
        self.mapped = mapped or (lambda user: None)
        self.system = system or SystemAccounts()
        #: run_blocking(f, *args): a Deferred of f(*args), run off the reactor (default: at once)
        self.run_blocking = run_blocking or defer.maybeDeferred
        self.service_uid = os.geteuid() if service_uid is None else service_uid
        self._creating = defer.DeferredLock()

    def home(self, user):
        return os.path.join(self.home_root, user)

    def account_for(self, user):
        """A Deferred of *user*'s :class:`Account` (created if needed), or failing with NoAccount."""
        return defer.maybeDeferred(self._account_for, user)

    def _account_for(self, user):
        check_owner(user, "an OS account")
        mapped = self.mapped(user)
        if mapped:
            return self._mapped_account(user, mapped)
        name = account_name(self.prefix, user)
        found = self.system.lookup(name)
        if found is not None:
            return self._ready(user, name, *self._in_range(name, *found))
        return self._creating.run(self.run_blocking, self._create, user, name)

    def _mapped_account(self, user, name):
        found = self.system.lookup(name)
        if found is None:
            raise NoAccount(f"user {user!r} is mapped to OS account {name!r} in the users file, "
                            f"which does not exist: create it, or remove the mapping")
        if found[0] in (0, self.service_uid):
            raise NoAccount(f"user {user!r} is mapped to OS account {name!r}, uid {found[0]}: "
                            f"kernels never run as root or as the service's own account")
        return self._ready(user, name, *found)

    def _in_range(self, name, uid, gid):
        low, high = self.uid_range
        if not low <= uid <= high:
            raise NoAccount(f"OS account {name!r} exists with uid {uid}, outside --uid-range "
                            f"{low}-{high}: it is not one of ours (remove it, or map the user "
                            f"to an account in the users file)")
        return uid, gid

    def _create(self, user, name):
        found = self.system.lookup(name)  # made while this waited for the lock?
        if found is None:
            uid = self._free_uid()
            self.system.create(name, uid, f"webkernel user {user}")
            found = self.system.lookup(name)
            if found is None:
                raise NoAccount(f"created OS account {name!r} but cannot find it")
            self.log.info("created OS account {account} (uid {uid}) for user {user}",
                          account=name, uid=found[0], user=user)
        return self._ready(user, name, *self._in_range(name, *found))

    def _free_uid(self):
        used = self.system.ids_in_use()
        low, high = self.uid_range
        for uid in range(low, high + 1):
            if uid not in used:
                return uid
        raise NoAccount(f"no free uid left in --uid-range {low}-{high}: widen it")

    def _ready(self, user, name, uid, gid):
        home = self.home(user)
        self.system.ensure_home(home, uid, gid)
        return Account(name, uid, gid, home)


def thread_runner(reactor):
    """A ``run_blocking`` that runs in *reactor*'s thread pool."""
    return lambda f, *args: threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)


class SharedAccount:
    """``--unsafe-shared-account``: every kernel runs as the service's own account.

    Each user still gets a working directory ``<home root>/<user>`` (0700,
    the service's); nothing separates one user's kernels from another's.
    """

    def __init__(self, home_root):
        self.home_root = os.path.abspath(home_root)

    def account_for(self, user):
        """A Deferred of the service's own :class:`Account`, with *user*'s working directory."""
        return defer.maybeDeferred(self._account_for, user)

    def _account_for(self, user):
        check_owner(user, "a working directory")
        home = os.path.join(self.home_root, user)
        os.makedirs(home, mode=0o700, exist_ok=True)
        name = pwd.getpwuid(os.geteuid()).pw_name
        return Account(name, os.geteuid(), os.getegid(), home)
