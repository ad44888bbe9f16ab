"""The users a running service knows: the users file, re-read when it changes.

:class:`UserDirectory` is what the authenticators ask. It re-reads the file
when its modification time, size or inode change: on every sign-in (a
``stat``, so a user just added can sign in at once) and every
``poll_interval`` seconds on the injected clock, so that a removed user, or
one whose password or role changed, is noticed while signed in and
``on_change`` is told their names (the wiring ends their sessions). A file
that has become unreadable or malformed is logged and the users read before
stay in force.
"""

import hashlib
import hmac
import os
import secrets
from collections import OrderedDict

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from broker.users import store
from broker.users.throttle import FailureThrottle

DEFAULT_POLL_INTERVAL = 2.0
#: passwords verified lately (as digests), so a JSON-RPC client's every request
#: does not cost a PBKDF2 derivation
MAX_VERIFIED = 1024


class UserDirectory:
    """The users of one users file, their failed sign-ins, and who changed."""

    log = Logger()

    def __init__(self, path, clock, on_change=None, poll_interval=DEFAULT_POLL_INTERVAL):
        self.path = path
        self.clock = clock
        self.on_change = on_change or (lambda names: None)
        self.poll_interval = poll_interval
        self.throttle = FailureThrottle(clock)
        self._secret = secrets.token_bytes(32)  # for the salts of names that are no user
        self._stamp = self._stat()
        self.users = store.load(path)
        self._poll = None
        self._verified = OrderedDict()  # digest of (user record, password) -> True

    def get(self, name):
        """The user called *name*, or None (the file is re-read first if it changed)."""
        self.refresh()
        return self.users.get(name) if isinstance(name, str) else None

    def password_ok(self, user, password):
        """True if *password* is *user*'s; repeated successes skip the PBKDF2 derivation.

        What is remembered is a digest of the password with the user's whole
        record (salt and key), so a new password or a new salt never matches
        an old entry. At most :data:`MAX_VERIFIED` are kept.
        """
        if not isinstance(password, str):
            return False
        digest = hashlib.sha256("\0".join((user.name, user.salt, user.key, password))
                                .encode("utf-8", "surrogatepass")).digest()
        if digest in self._verified:
            self._verified.move_to_end(digest)
            return True
        if not user.checks(password):
            return False
        self._verified[digest] = True
        while len(self._verified) > MAX_VERIFIED:
            self._verified.popitem(last=False)
        return True

    def stand_in(self, name):
        """A user who is no one: stable salt per name, a key nothing matches.

        Challenging an unknown name with it makes unknown names look like
        known ones (the same salt on each try, the same parameters).
        """
        digest = hmac.new(self._secret, str(name).encode("utf-8", "replace"), hashlib.sha256)
        salt = digest.hexdigest()[:22]
        return store.User(str(name), "student", salt, store.DEFAULT_ITERATIONS, store.KEYLEN,
                          secrets.token_urlsafe(32))

    # -- noticing changes --------------------------------------------------------

    def start(self):
        """Poll the file every ``poll_interval`` seconds (on the clock)."""
        self._poll = LoopingCall(self.refresh)
        self._poll.clock = self.clock
        self._poll.start(self.poll_interval, now=False)

    def stop(self):
        if self._poll is not None and self._poll.running:
            self._poll.stop()

    def refresh(self):
        """Re-read the file if it changed; tell ``on_change`` who was removed or changed."""
        stamp = self._stat()
        if stamp == self._stamp:
            return
        try:
            users = store.load(self.path)
        except store.UsersFileError as e:
            self.log.error("{why}; the users read before stay in force", why=str(e))
            return
        self._stamp = stamp
        changed = sorted(name for name, user in self.users.items() if users.get(name) != user)
        self.users = users
        self.log.info("re-read the users file {path}: {count} users", path=self.path,
                      count=len(users))
        if changed:
            self.on_change(changed)

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)
