"""The users file: names, roles and WAMP-CRA derived keys, never a password in clear.

A user's secret is stored the way WAMP-CRA's salted mode needs it: the
PBKDF2 key derived from the password (``autobahn.wamp.auth.derive_key``)
with its salt, iteration count and key length. The router can then check a
WAMP-CRA signature without ever knowing the password, and a ticket (the
password itself) by deriving the key again.

The file is JSON, created with mode 0600 and replaced atomically (written to
a temporary file in the same directory, flushed, then renamed over it)::

    {"version": 1,
     "users": {"alice": {"role": "student", "salt": "…", "iterations": 10000,
                         "keylen": 32, "key": "…"},
               "tess": {"role": "teacher", …, "account": "tess"}}}

``account`` (optional) maps the user to an existing OS account their kernels
run as; without it the service makes one (``--user-prefix``, ``--uid-range``).
"""

import contextlib
import fcntl
import hmac
import json
import os
import re
import secrets

import attr
from autobahn.wamp.auth import derive_key

from broker.atomic_files import replace_file

ROLES = ("student", "teacher", "observer")
VERSION = 1
#: PBKDF2 iterations for new passwords (WAMP-CRA clients derive the key once per sign-in)
DEFAULT_ITERATIONS = 10000
KEYLEN = 32
MIN_PASSWORD_LENGTH = 8
#: generated passwords: no 0/O, 1/l/I, so they can be read aloud and copied by hand
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
GENERATED_LENGTH = 14
_NAME = re.compile(r"[a-z0-9_]{1,32}")
#: an OS account name (as useradd takes them)
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
#: authids the service gives its own sessions, never a user's
RESERVED_NAMES = ("webkernel_host", "jsonrpc")


class UsersFileError(Exception):
    """The users file cannot be read or has a bad entry; the message says which and why."""


class BadName(ValueError):
    """A user name that cannot be an authid."""


class BadPassword(ValueError):
    """A password that is too short or not text."""


def check_name(name):
    """Return *name* if it can be a user's authid, else raise :class:`BadName`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadName(f"bad user name {name!r}: use 1 to 32 of a-z, 0-9 and _ "
                      f"(it becomes the WAMP authid)")
    if name in RESERVED_NAMES or name.startswith("webkernel"):
        raise BadName(f"bad user name {name!r}: jsonrpc and names starting with 'webkernel' "
                      f"are the service's own")
    return name


def check_account(account):
    """Return *account* (an OS account name, or None) if it can be one, else raise ``ValueError``."""
    if account is not None and (not isinstance(account, str) or not _ACCOUNT.fullmatch(account)):
        raise ValueError(f"bad OS account name {account!r}: use 1 to 32 of a-z, 0-9, _ . -, "
                         f"starting with a letter or _")
    return account


def check_role(role):
    """Return *role* if it is one of :data:`ROLES`, else raise ``ValueError``."""
    if role not in ROLES:
        raise ValueError(f"bad role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_password(password):
    """Return *password* if it is long enough, else raise :class:`BadPassword`."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise BadPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def generate_password():
    """A new random password (about 70 bits), easy to read aloud."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_LENGTH))


@attr.s(frozen=True)
class User:
    """One user: name (the authid), role, and the WAMP-CRA derived key with its parameters."""

    name = attr.ib()
    role = attr.ib()
    salt = attr.ib()
    iterations = attr.ib()
    keylen = attr.ib()
    key = attr.ib()
    #: the existing OS account the user's kernels run as, or None (one is made)
    account = attr.ib(default=None)

    @classmethod
    def create(cls, name, role, password, iterations=DEFAULT_ITERATIONS, account=None):
        """A user with a fresh salt for *password* (which is checked, then forgotten)."""
        check_name(name)
        check_role(role)
        check_password(password)
        check_account(account)
        salt = secrets.token_urlsafe(16)
        key = derive_key(password, salt, iterations, KEYLEN).decode("ascii")
        return cls(name, role, salt, iterations, KEYLEN, key, account)

    def with_password(self, password):
        """The same user with a new salt and key for *password*."""
        return User.create(self.name, self.role, password, self.iterations, self.account)

    def checks(self, password):
        """True if *password* is this user's (a PBKDF2 derivation: milliseconds of CPU)."""
        if not isinstance(password, str):
            return False
        key = derive_key(password, self.salt, self.iterations, self.keylen).decode("ascii")
        return hmac.compare_digest(key, self.key)

    def challenge_extra(self):
        """WAMP-CRA's salted-mode CHALLENGE parameters."""
        return {"salt": self.salt, "iterations": self.iterations, "keylen": self.keylen}

    def to_json(self):
        entry = {"role": self.role, "salt": self.salt, "iterations": self.iterations,
                 "keylen": self.keylen, "key": self.key}
        if self.account is not None:
            entry["account"] = self.account
        return entry

    @classmethod
    def from_json(cls, name, entry):
        try:
            check_name(name)
            check_role(entry["role"])
            user = cls(name, entry["role"], entry["salt"], entry["iterations"],
                       entry["keylen"], entry["key"], check_account(entry.get("account")))
        except (KeyError, TypeError, ValueError) as e:
            raise UsersFileError(f"bad entry for user {name!r}: {e}") from None
        if not (isinstance(user.salt, str) and isinstance(user.key, str)
                and type(user.iterations) is int and user.iterations > 0
                and type(user.keylen) is int and user.keylen > 0):
            raise UsersFileError(f"bad entry for user {name!r}: salt and key must be text, "
                                 f"iterations and keylen positive integers")
        return user


def load(path):
    """The users in the file at *path*, by name; a missing file has none."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsersFileError(f"cannot read the users file {path}: {e.strerror}") from None
    return parse(data, path)


def parse(data, path="the users file"):
    """The users in the bytes of a users file, by name."""
    try:
        document = json.loads(data)
    except ValueError as e:
        raise UsersFileError(f"{path} is not a users file (bad JSON: {e})") from None
    if not isinstance(document, dict) or document.get("version") != VERSION \
            or not isinstance(document.get("users"), dict):
        raise UsersFileError(f"{path} is not a version {VERSION} users file "
                             f'(expected {{"version": {VERSION}, "users": {{…}}}})')
    return {name: User.from_json(name, entry) for name, entry in document["users"].items()}


def lock_path(path):
    """The lock file beside the users file at *path*: ``FILE.lock``."""
    return path + ".lock"


@contextlib.contextmanager
def editing(path):
    """Hold the users file's edit lock (``fcntl.flock`` on ``FILE.lock``) while the block runs.

    Every edit (load, change, save) runs under it, so two edits at once are
    made one after the other and neither is lost; a second waits for the
    first. The lock file (mode 0600) is left in place: removing it while
    another editor waits on it would let a third lock a new one beside it.
    Readers (the service, ``list``) need no lock: the file is replaced
    atomically.
    """
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def save(path, users):
    """Replace the file at *path* atomically with *users* (mode 0600)."""
    document = {"version": VERSION,
                "users": {name: users[name].to_json() for name in sorted(users)}}
    data = (json.dumps(document, indent=1) + "\n").encode("utf-8")
    replace_file(path, data, 0o600, prefix=".users-", suffix="", sync=True)
