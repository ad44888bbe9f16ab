"""Start-up checks of multi-user mode: can kernels really run as other accounts?

Run once, before the service starts, so that a class finds out at start what
to fix rather than at its first kernel:

* :func:`cannot_switch_accounts`: the service must be root (to create
  accounts and switch to them) and have ``useradd``/``groupadd``;
* :func:`prepare_home_root`: the home root exists, is the service's, mode
  0711, and is short enough for the kernels' Unix socket paths;
* :func:`kernelspec_problem`: the default kernelspec's interpreter and the
  module it runs can be used by another account: it is actually run, as the
  probe account (``nobody``), importing that module. The usual failure is an
  interpreter under ``/root`` (mode 0700); the message names the directory
  that blocks and what to do.

Each returns a message (or raises :class:`IsolationUnavailable`) saying
exactly what to fix.
"""

import os
import pwd
import shutil
import stat
import subprocess

from broker.kernel.errors import KernelCommandNotFound, NoSuchKernelSpec
from broker.kernel.kernelspecs import find_spec, kernel_command

PROBE_ACCOUNT = "nobody"
#: longest --home-root: <root>/<user: 32>/.kernel-<12>-<3 digits> must fit a Unix socket path (107)
MAX_HOME_ROOT = 107 - len("/") - 32 - len("/.kernel-") - 12 - len("-999")
PROBE_TIMEOUT = 120
KERNEL_ENV_HELP = (
    "install the kernels' Python where every account can reach it, e.g. "
    "python3 -m venv /opt/webkernel-kernels && /opt/webkernel-kernels/bin/pip install ipykernel "
    "&& /opt/webkernel-kernels/bin/python -m ipykernel install --prefix /opt/webkernel-kernels, "
    "then start the service with JUPYTER_PATH=/opt/webkernel-kernels/share/jupyter "
    "(see docs/classroom.md)")


class IsolationUnavailable(Exception):
    """Kernels cannot be isolated by OS account here; the message says why and what to do."""


def cannot_switch_accounts(euid=None, which=shutil.which):
    """Why this service cannot run kernels as other accounts, or None if it can."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return (f"multi-user mode runs each user's kernels as their own OS account, which "
                f"needs root; this service runs as uid {euid}. Start it as root, or give "
                f"--unsafe-shared-account to run every kernel as this one account (students' "
                f"code can then reach each other's kernels and files)")
    missing = [tool for tool in ("useradd", "groupadd") if which(tool) is None]
    if missing:
        return (f"multi-user mode creates OS accounts with useradd and groupadd: "
                f"{' and '.join(missing)} not found on the PATH (Debian: apt-get install passwd)")
    return None


def prepare_home_root(path):
    """Create the home root (mode 0711, the service's) or check an existing one."""
    path = os.path.abspath(path)
    if len(path) > MAX_HOME_ROOT:
        raise IsolationUnavailable(
            f"--home-root {path} is {len(path)} characters; at most {MAX_HOME_ROOT} leave room "
            f"for the kernels' Unix socket paths (107 bytes): choose a shorter one")
    os.makedirs(path, mode=0o711, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise IsolationUnavailable(
            f"--home-root {path} must be a directory of this service's account (uid "
            f"{os.geteuid()}), not a link or another account's")
    if stat.S_IMODE(info.st_mode) != 0o711:
        os.chmod(path, 0o711)
    blocked = blocking_directory(os.path.dirname(path))
    if blocked:
        raise IsolationUnavailable(
            f"--home-root {path} cannot be reached by the kernels' accounts: {blocked}")
    return path


def blocking_directory(path):
    """``"<dir> is mode 0700"`` for the first directory on *path* others cannot enter, or None."""
    current = "/"
    for part in [p for p in os.path.abspath(path).split(os.sep) if p] or [""]:
        current = os.path.join(current, part)
        try:
            info = os.stat(current)
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode) and not info.st_mode & stat.S_IXOTH:
            return f"{current} is mode {stat.S_IMODE(info.st_mode):04o} (others cannot enter it)"
    return None


def python_module(argv):
    """The module a Python kernel's argv runs (``-m MODULE``), or None."""
    for flag, value in zip(argv, argv[1:]):
        if flag == "-m":
            return value
    return None


def kernelspec_problem(spec_manager, kernel_name, account=PROBE_ACCOUNT, run=subprocess.run):
    """Why kernelspec *kernel_name* cannot run as another account (tried as *account*), or None."""
    try:
        spec = find_spec(spec_manager, kernel_name)
        executable, argv = kernel_command(spec, "/dev/null")
    except (NoSuchKernelSpec, KernelCommandNotFound) as e:
        return str(e)
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        return f"no account {account!r} to try the kernels' interpreter as: create it"
    module = python_module(argv)
    probe = [executable, "-c", f"import {module}"] if module else [executable, "--version"]
    try:
        done = run(probe, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], cwd="/",
                   env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent"},
                   capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as e:
        return _unreachable(kernel_name, executable, account, str(e))
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        return _unreachable(kernel_name, executable, account, lines[-1] if lines else
                            f"exit status {done.returncode}", module)
    return None


def _unreachable(kernel_name, executable, account, detail, module=None):
    blocked = blocking_directory(os.path.dirname(executable)) \
        or blocking_directory(os.path.dirname(os.path.realpath(executable)))
    what = f"{executable} -c 'import {module}'" if module else executable
    fix = f"{blocked}: chmod o+x it, or {KERNEL_ENV_HELP}" if blocked else KERNEL_ENV_HELP
    return (f"the kernels' accounts cannot run kernelspec {kernel_name!r}: {what} failed as "
            f"account {account!r} ({detail}). {fix}")
