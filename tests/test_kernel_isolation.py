"""Attacks from inside a kernel on a real ``twistd webkernel --users``, run as root.

Students alice and bob (made with the webkernel-users command) each get a
kernel through JSON-RPC; their kernels run as test accounts ``wkt-alice`` and
``wkt-bob`` (uids 29900-29999, removed at the end). From alice's kernel:
reading bob's files, bob's connection files, the users file, listing the
kernel directory, signalling bob's kernel all fail with PermissionError;
alice's memory hog gets MemoryError, her fork loop stops at
``--kernel-processes``, her file opening at ``--kernel-open-files`` (EMFILE),
her large file at ``--kernel-file-size`` (EFBIG), she runs at ``--kernel-nice``
and cannot take it back, and bob's kernel still answers.

Needs root, and a Python with ipykernel that other accounts can run: the one
``./run-tests`` makes (``/var/tmp/webkernel-kernel-env``, or
``$WEBKERNEL_KERNEL_PYTHON``); the service's own may sit under ``/root``.
"""

import ast
import errno
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from jsonrpclib import ServerProxy

from broker.kernel import isolation_checks, records
from broker.users import command
from tests.service import ServiceProcess

KERNEL_PYTHON = os.environ.get("WEBKERNEL_KERNEL_PYTHON",
                               "/var/tmp/webkernel-kernel-env/bin/python")
PREFIX = "wkt-"
PASSWORDS = {"alice": "alice password", "bob": "bob password"}
#: the classroom's limits: small, so attacks reach them quickly (a kernel has ~10 threads and
#: ~40 open files of its own); the log cap must stay below the file size (a kernel writes its log)
PROCESSES, OPEN_FILES, FILE_SIZE, NICE = 40, 128, 1024 ** 2, 7
LIMITS = ("--kernel-processes", str(PROCESSES), "--kernel-open-files", str(OPEN_FILES),
          "--kernel-file-size", str(FILE_SIZE), "--kernel-log-bytes", str(FILE_SIZE // 4),
          "--kernel-nice", str(NICE))
pytestmark = pytest.mark.integration


def _skip_reason():
    if os.geteuid() != 0:
        return "OS isolation needs root (to create accounts and switch to them)"
    if not os.path.exists(KERNEL_PYTHON):
        return (f"no kernel Python other accounts can run at {KERNEL_PYTHON}: ./run-tests "
                f"makes one (or set WEBKERNEL_KERNEL_PYTHON)")
    return None


def remove_test_accounts():
    for user in PASSWORDS:
        subprocess.run(["userdel", PREFIX + user], capture_output=True)
        subprocess.run(["groupdel", PREFIX + user], capture_output=True)


def make_directory():
    """A 0755 directory (short: Unix socket paths) with a shared-Python kernelspec and a users file."""
    directory = tempfile.mkdtemp(prefix="wk")
    os.chmod(directory, 0o755)
    specs = os.path.join(directory, "share", "jupyter", "kernels", "python3")
    os.makedirs(specs)
    with open(os.path.join(specs, "kernel.json"), "w") as f:
        json.dump({"argv": [KERNEL_PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3 (shared)", "language": "python"}, f)
    users_file = os.path.join(directory, "users.json")
    for user, password in PASSWORDS.items():
        assert command.main([users_file, "add", user, "--role", "student",
                             "--password", password]) == 0
    return directory


def start_service(directory, *extra):
    """``twistd webkernel --users`` as root with test accounts, and each student's JSON-RPC proxy."""
    service = ServiceProcess(
        "--users", os.path.join(directory, "users.json"),
        "--kernel-dir", os.path.join(directory, "kernels"),
        "--home-root", os.path.join(directory, "homes"),
        "--user-prefix", PREFIX, "--uid-range", "29900-29999", "--kernel-memory", "1GiB", *extra,
        timeout=120, env={"JUPYTER_PATH": os.path.join(directory, "share", "jupyter"),
                          "WEBKERNEL_TEST_SECRET": "not for kernels"})
    proxies = {user: ServerProxy(f"http://{user}:{password}@127.0.0.1:{service.port}/jsonrpc")
               for user, password in PASSWORDS.items()}
    return service, proxies


def open_classroom(*extra, first_cell="1"):
    """A multi-user service with real OS isolation (*extra*: more options), for a fixture to yield from.

    Yields ``{service, proxies, users_file, kernel_dir, home_root}`` once each
    student's default kernel answered ``1`` to *first_cell*; stops the service
    and removes the test accounts and the directory after (or if that fails).
    """
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    remove_test_accounts()
    directory = make_directory()
    service, proxies = start_service(directory, *extra)
    try:
        for proxy in proxies.values():
            assert proxy.eval_cell(first_cell) == "1"  # each starts their default kernel
        yield {"service": service, "proxies": proxies,
               "users_file": os.path.join(directory, "users.json"),
               "kernel_dir": os.path.join(directory, "kernels"),
               "home_root": os.path.join(directory, "homes")}
    finally:
        service.stop()
        remove_test_accounts()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def classroom():
    """A service in multi-user mode with real OS isolation; two students' JSON-RPC proxies."""
    yield from open_classroom(*LIMITS)


def wait_for_line(service, text, timeout=120):
    """Wait (bounded) until the service has logged a line containing *text*."""
    deadline = time.monotonic() + timeout
    while text not in service.log():
        assert time.monotonic() < deadline and service.alive(), service.log()
        time.sleep(0.1)  # polling the log the reader thread fills


def attempt(proxy, statement):
    """Run *statement* in the kernel; the name of the exception it raised, or 'done'."""
    code = (f"try:\n    {statement}\n    _outcome = 'done'\n"
            f"except Exception as _e:\n    _outcome = type(_e).__name__\n_outcome")
    return proxy.eval_cell(code).strip("'")


def kernel_of(classroom, user):
    (model,) = classroom["proxies"][user].kernels()
    return model["id"]


def test_kernels_run_as_their_users_accounts(classroom):
    """Each student's kernel runs as their own account, no groups, in their 0700 home, no secrets."""
    for user in PASSWORDS:
        proxy = classroom["proxies"][user]
        account = pwd.getpwnam(PREFIX + user)
        home = os.path.join(classroom["home_root"], user)
        assert proxy.eval_cell("import os; (os.getuid(), os.geteuid(), os.getgroups())") \
            == repr((account.pw_uid, account.pw_uid, []))
        assert proxy.eval_cell("os.getcwd(), os.environ['HOME']") == repr((home, home))
        assert proxy.eval_cell("'WEBKERNEL_TEST_SECRET' in os.environ") == "False"
        info = os.stat(home)
        assert (info.st_uid, info.st_mode & 0o777) == (account.pw_uid, 0o700)


def test_kernels_talk_over_ipc_in_the_home(classroom):
    """The service's connection file says ipc, with sockets in the owner's home; the kernel's copy is 0600 and theirs."""
    kernel_id = kernel_of(classroom, "alice")
    with open(records.connection_path(classroom["kernel_dir"], kernel_id)) as f:
        info = json.load(f)
    home = os.path.join(classroom["home_root"], "alice")
    assert info["transport"] == "ipc"
    assert info["ip"] == records.ipc_prefix(home, kernel_id)
    copy = os.stat(info["ip"] + ".json")
    assert (copy.st_uid, copy.st_mode & 0o777) == (pwd.getpwnam(PREFIX + "alice").pw_uid, 0o600)


def test_a_student_cannot_read_anothers_files(classroom):
    """From alice's kernel: bob's files, both of bob's connection files, the users file, the kernel directory: PermissionError."""
    alice, bob = classroom["proxies"]["alice"], classroom["proxies"]["bob"]
    assert attempt(bob, "open('secret.txt', 'w').write('bob only')") == "done"
    bob_id = kernel_of(classroom, "bob")
    bob_home = os.path.join(classroom["home_root"], "bob")
    for path in (os.path.join(bob_home, "secret.txt"),
                 records.ipc_prefix(bob_home, bob_id) + ".json",
                 records.connection_path(classroom["kernel_dir"], bob_id),
                 classroom["users_file"]):
        assert attempt(alice, f"open({path!r}).read()") == "PermissionError", path
    for directory in (bob_home, classroom["kernel_dir"]):
        assert attempt(alice, f"import os; os.listdir({directory!r})") == "PermissionError", directory
    assert attempt(alice, f"import os; os.listdir({classroom['home_root']!r})") == "PermissionError"


def test_a_student_cannot_signal_anothers_kernel(classroom):
    """From alice's kernel, killing bob's kernel process is PermissionError; bob's kernel lives on."""
    alice, bob = classroom["proxies"]["alice"], classroom["proxies"]["bob"]
    bob_pid = int(bob.eval_cell("import os; os.getpid()"))
    assert attempt(alice, f"import os, signal; os.kill({bob_pid}, signal.SIGKILL)") \
        == "PermissionError"
    assert bob.eval_cell("1 + 1") == "2"


def test_a_memory_hog_gets_memory_error_and_hurts_no_one(classroom):
    """Alice allocating past --kernel-memory gets MemoryError; her kernel and bob's still answer."""
    alice, bob = classroom["proxies"]["alice"], classroom["proxies"]["bob"]
    before = kernel_of(classroom, "alice")
    assert attempt(alice, "_hog = bytearray(3 * 1024 ** 3)") == "MemoryError"
    assert alice.eval_cell("'still here'") == "'still here'"
    assert bob.eval_cell("6 * 7") == "42"
    assert kernel_of(classroom, "alice") == before


FORK_LOOP = """\
import subprocess
_children, _error = [], None
try:
    for _ in range(200):
        _children.append(subprocess.Popen(['sleep', '30']))
except OSError as _e:
    _error = (type(_e).__name__, _e.errno)
finally:
    for _child in _children:
        _child.kill()
        _child.wait()
(len(_children), _error)"""


def test_a_fork_loop_stops_at_the_process_limit_and_hurts_no_one(classroom):
    """Alice spawning up to 200 children gets EAGAIN below --kernel-processes; both kernels still answer."""
    alice, bob = classroom["proxies"]["alice"], classroom["proxies"]["bob"]
    started, error = ast.literal_eval(alice.eval_cell(FORK_LOOP))
    assert started < PROCESSES, started
    assert error == ("BlockingIOError", errno.EAGAIN), (started, error)
    assert alice.eval_cell("'still here'") == "'still here'"
    assert bob.eval_cell("6 * 7") == "42"


OPEN_LOOP = """\
_files, _error = [], None
try:
    for _ in range(2000):
        _files.append(open('/dev/null'))
except OSError as _e:
    _error = (type(_e).__name__, _e.errno)
finally:
    for _file in _files:
        _file.close()
(len(_files), _error)"""


def test_opening_files_stops_at_the_open_files_limit(classroom):
    """Alice opening up to 2000 files gets EMFILE below --kernel-open-files; her kernel still answers."""
    alice = classroom["proxies"]["alice"]
    opened, error = ast.literal_eval(alice.eval_cell(OPEN_LOOP))
    assert opened < OPEN_FILES, opened
    assert error == ("OSError", errno.EMFILE), (opened, error)
    assert alice.eval_cell("'still here'") == "'still here'"


def test_a_file_past_the_file_size_limit_is_efbig_not_a_killed_kernel(classroom):
    """Writing past --kernel-file-size is OSError EFBIG (Python ignores SIGXFSZ), the file stops at the limit; a child command writing past it dies of SIGXFSZ."""
    alice = classroom["proxies"]["alice"]
    before = kernel_of(classroom, "alice")
    code = (f"import errno, os, signal, subprocess\n"
            f"try:\n"
            f"    with open('big.bin', 'wb') as _f:\n"
            f"        _f.write(bytes({2 * FILE_SIZE}))\n"
            f"    _error = None\n"
            f"except OSError as _e:\n"
            f"    _error = _e.errno\n"
            f"with open('child.bin', 'wb') as _f:\n"
            f"    _child = subprocess.run(['head', '-c', '{2 * FILE_SIZE}', '/dev/zero'], stdout=_f)\n"
            f"_sizes = (os.path.getsize('big.bin'), os.path.getsize('child.bin'))\n"
            f"os.remove('big.bin'); os.remove('child.bin')\n"
            f"(_error, _sizes, _child.returncode, signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN)")
    error, sizes, returncode, ignored = ast.literal_eval(alice.eval_cell(code))
    assert error == errno.EFBIG
    assert sizes == (FILE_SIZE, FILE_SIZE)
    assert returncode == -signal.SIGXFSZ
    assert ignored
    assert alice.eval_cell("'still here'") == "'still here'"
    assert kernel_of(classroom, "alice") == before


def test_kernels_run_at_the_configured_nice_value_and_cannot_lower_it(classroom):
    """Both kernels run at --kernel-nice; alice trying to raise her priority again gets PermissionError."""
    for proxy in classroom["proxies"].values():
        assert proxy.eval_cell("import os; os.nice(0), os.getpriority(os.PRIO_PROCESS, 0)") \
            == repr((NICE, NICE))
    alice = classroom["proxies"]["alice"]
    assert attempt(alice, "os.nice(-1)") == "PermissionError"
    assert alice.eval_cell("os.nice(0)") == str(NICE)


def test_start_up_probe_passes_for_the_shared_python(classroom):
    """The start-up check finds the test's kernel Python usable by other accounts (it started)."""
    assert classroom["service"].alive()
    assert isolation_checks.blocking_directory(os.path.dirname(KERNEL_PYTHON)) is None


def test_a_restarted_kernel_is_confined_again(classroom):
    """Restarting keeps the account; the old launch's copy and sockets are gone from the home."""
    alice = classroom["proxies"]["alice"]
    kernel_id = kernel_of(classroom, "alice")
    uid = alice.eval_cell("import os; os.getuid()")
    alice.restart(kernel_id)
    assert alice.eval_cell("import os; os.getuid()") == uid
    home = os.path.join(classroom["home_root"], "alice")
    kernel_files = [name for name in os.listdir(home) if name.startswith(".kernel-")]
    assert len(kernel_files) == 6, kernel_files  # its copy and five sockets, once


def test_kept_kernels_are_found_again_by_the_next_service(classroom):
    """--keep-kernels: a confined kernel outlives its service and the next one re-attaches it."""
    check_kept_kernel_found_again()


def check_kept_kernel_found_again(*options):
    """Alice's kernel, kept by a service (*options* and --keep-kernels), answers the next service."""
    directory = make_directory()
    try:
        service, proxies = start_service(directory, "--keep-kernels", *options)
        try:
            assert proxies["alice"].eval_cell("x = 41; x") == "41"
            (model,) = proxies["alice"].kernels()
        finally:
            service.stop()
        service, proxies = start_service(directory, *options)
        try:
            wait_for_line(service, f"re-attached kernel {model['id']}")
            assert proxies["alice"].eval_cell("x + 1", model["id"]) == "42", service.log()
        finally:
            service.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
