"""A warm pool in multi-user mode: ``--users --kernel-factory fork --pool python3=2``, run as root.

The classroom of test_kernel_isolation (students alice and bob as test
accounts, its small limits) with a pool of forked kernels that have
initialised ipykernel as the service and wait, unassigned, for an owner.
Each student's first kernel comes from the pool; it must then be confined
exactly as a kernel started for them (the attacks of test_kernel_isolation
are collected here again and fail the same way), and nothing of one user
may reach another through the pool.
"""

import ast
import json
import os
import pwd
import re
import shutil
import signal
import threading
import time

import pytest
from jsonrpclib import ServerProxy

from broker.kernel import records
from tests.test_kernel_isolation import (
    FILE_SIZE,
    LIMITS,
    NICE,
    OPEN_FILES,
    PASSWORDS,
    PREFIX,
    PROCESSES,
    _skip_reason,
    attempt,
    make_directory,
    remove_test_accounts,
    start_service,
    wait_for_line,
)

pytestmark = pytest.mark.integration
POOL = ("--kernel-factory", "fork", "--pool", "python3=2")


def pooled_ids(service):
    """Ids of the kernels the pool has made ready so far, in order."""
    return re.findall(r"pooled kernel (\w+) \(python3\) is ready", service.log())


def wait_for_count(service, text, count, timeout=120):
    """Wait (bounded) until the service's log holds *text* at least *count* times."""
    deadline = time.monotonic() + timeout
    while service.log().count(text) < count:
        assert time.monotonic() < deadline and service.alive(), service.log()
        time.sleep(0.1)  # polling the log the reader thread fills


@pytest.fixture(scope="module")
def classroom():
    """The multi-user service with a warm pool of two; each student's first kernel is a pooled one."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    remove_test_accounts()
    directory = make_directory()
    service, proxies = start_service(directory, *LIMITS, *POOL)
    try:
        wait_for_line(service, "2 in the pool")
        for proxy in proxies.values():
            assert proxy.eval_cell("import os; 1") == "1"  # the attacks take os as imported
        first = {user: proxy.kernels()[0]["id"] for user, proxy in proxies.items()}
    except BaseException:
        service.stop()
        remove_test_accounts()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    yield {"service": service, "proxies": proxies,
           "users_file": os.path.join(directory, "users.json"),
           "kernel_dir": os.path.join(directory, "kernels"),
           "home_root": os.path.join(directory, "homes"), "first": first}
    service.stop()
    remove_test_accounts()
    shutil.rmtree(directory, ignore_errors=True)


def waiting_ids(service):
    """Ids of the kernels in the pool now (made ready, not handed out), as its log tells."""
    log = service.log()
    return [k for k in pooled_ids(service) if f"handed out pooled kernel {k}" not in log]


def wait_for_waiting(service):
    """The ids of the kernels waiting in the pool, once there is one (bounded wait)."""
    deadline = time.monotonic() + 120
    while not waiting_ids(service):
        assert time.monotonic() < deadline and service.alive(), service.log()
        time.sleep(0.1)  # polling the log the reader thread fills
    return waiting_ids(service)


def take_pooled(classroom, user):
    """A kernel for *user* that comes from the pool: waits (bounded) until one is waiting, starts one."""
    service = classroom["service"]
    wait_for_waiting(service)
    kernel_id = classroom["proxies"][user].start_kernel()["id"]
    assert f"handed out pooled kernel {kernel_id}" in service.log()
    return kernel_id


@pytest.fixture
def pooled(classroom):
    """A kernel from the pool for each student, shut down after the test."""
    kernels = {user: take_pooled(classroom, user) for user in PASSWORDS}
    yield kernels
    for user, kernel_id in kernels.items():
        try:
            classroom["proxies"][user].shutdown(kernel_id)
        except Exception:  # noqa: BLE001 - a test may have shut it down already
            pass


def run(classroom, user, kernel_id, statement):
    """Run *statement* in *user*'s kernel; the name of the exception it raised, or 'done'."""
    code = (f"try:\n    {statement}\n    _outcome = 'done'\n"
            f"except BaseException as _e:\n    _outcome = type(_e).__name__\n_outcome")
    return classroom["proxies"][user].eval_cell(code, kernel_id).strip("'")


def ev(classroom, user, kernel_id, code):
    return classroom["proxies"][user].eval_cell(code, kernel_id)


def uid_of(path):
    """The real uid in a /proc/.../status file."""
    with open(path) as f:
        return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))


def test_each_students_first_kernel_came_from_the_pool(classroom):
    """The students' first (default) kernels were made ready by the pool before they asked, then given their accounts."""
    log = classroom["service"].log()
    for user, kernel_id in classroom["first"].items():
        assert kernel_id in pooled_ids(classroom["service"])[:2], user
        assert f"handed out pooled kernel {kernel_id}" in log
        assert f"pooled kernel {kernel_id} now runs as {PREFIX}{user}" in log


LIMITS_SEEN = """\
import os, resource
(os.getcwd(), os.environ['HOME'], os.environ['USER'], os.getresuid(), os.getresgid(),
 os.getgroups(), [resource.getrlimit(getattr(resource, n))
                  for n in ('RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE', 'RLIMIT_AS')])"""

THREADS_SEEN = """\
import os, re
_tasks = os.listdir('/proc/self/task')
_status = [open(f'/proc/self/task/{t}/status').read() for t in _tasks]
(len(_tasks), sorted({' '.join(re.search(r'^Uid:(.*)$', s, re.M).group(1).split()) for s in _status}),
 sorted({' '.join(re.search(r'^Gid:(.*)$', s, re.M).group(1).split()) for s in _status}),
 sorted({re.search(r'^Groups:(.*)$', s, re.M).group(1).strip() for s in _status}),
 sorted({os.getpriority(os.PRIO_PROCESS, int(t)) for t in _tasks}))"""


def test_a_pooled_kernel_takes_its_owners_account_limits_home_and_environment(classroom, pooled):
    """From inside: cwd, HOME, USER, uids, gids, groups and every rlimit are the owner's."""
    for user, kernel_id in pooled.items():
        account = pwd.getpwnam(PREFIX + user)
        home = os.path.join(classroom["home_root"], user)
        seen = ast.literal_eval(ev(classroom, user, kernel_id, LIMITS_SEEN))
        uid, gid = account.pw_uid, account.pw_gid
        assert seen == (home, home, PREFIX + user, (uid,) * 3, (gid,) * 3, [],
                        [(PROCESSES, PROCESSES), (OPEN_FILES, OPEN_FILES),
                         (FILE_SIZE, FILE_SIZE), (1024 ** 3, 1024 ** 3)]), user


def test_every_thread_of_a_pooled_kernel_switched(classroom, pooled):
    """The threads ipykernel made before the hand-out (iopub, heartbeat, control...) run as the owner too, at the nice value."""
    for user, kernel_id in pooled.items():
        account = pwd.getpwnam(PREFIX + user)
        count, uids, gids, groups, nices = ast.literal_eval(
            ev(classroom, user, kernel_id, THREADS_SEEN))
        assert count > 1  # initialised before the switch: it has threads
        assert (uids, gids, groups, nices) \
            == ([" ".join([str(account.pw_uid)] * 4)], [" ".join([str(account.pw_gid)] * 4)],
                [""], [NICE])  # real, effective, saved and filesystem ids, on every thread


def test_ipython_paths_are_the_owners(classroom, pooled):
    """IPython's directory, profile, %store database and directory history are in the owner's home, not the pool's."""
    home = os.path.join(classroom["home_root"], "alice")
    seen = ast.literal_eval(ev(classroom, "alice", pooled["alice"],
        "import os; _ip = get_ipython(); (str(_ip.ipython_dir), _ip.profile_dir.location, "
        "str(_ip.history_manager.dir_hist[0]), _ip.home_dir, "
        "os.path.dirname(str(_ip.db.root)))"))
    ipython_dir = os.path.join(home, ".ipython")
    profile = os.path.join(ipython_dir, "profile_default")
    assert seen == (ipython_dir, profile, home, home, profile)
    assert os.stat(profile).st_uid == pwd.getpwnam(PREFIX + "alice").pw_uid


def test_completion_caches_are_the_owners(classroom, pooled):
    """jedi's and parso's cache folders, set when the root template imported them, are in the owner's home."""
    home = os.path.join(classroom["home_root"], "alice")
    seen = ev(classroom, "alice", pooled["alice"],
              "import jedi, parso.cache; (jedi.settings.cache_directory, "
              "str(parso.cache._default_cache_path))")
    assert ast.literal_eval(seen) == (os.path.join(home, ".cache", "jedi"),
                                      os.path.join(home, ".cache", "parso"))


def test_startup_files_run_as_the_owner_from_the_owners_profile(classroom):
    """A startup file in alice's own IPython profile runs in her pooled kernel, as her, after the switch."""
    account = pwd.getpwnam(PREFIX + "alice")
    os.makedirs(os.path.join(classroom["home_root"], "alice", ".ipython", "profile_default",
                             "startup"), exist_ok=True)
    path = owners_profile_file(classroom, "alice", os.path.join("startup", "00-mine.py"),
                               "import os\n_startup_ran_as = os.getuid()\n")
    kernel_id = take_pooled(classroom, "alice")
    try:
        assert ev(classroom, "alice", kernel_id, "_startup_ran_as") == str(account.pw_uid)
    finally:
        classroom["proxies"]["alice"].shutdown(kernel_id)
        os.remove(path)


def owners_profile_file(classroom, user, name, text):
    """Write *name* in *user*'s IPython profile (theirs, as IPython would have made it); its path."""
    account = pwd.getpwnam(PREFIX + user)
    ipython = os.path.join(classroom["home_root"], user, ".ipython")
    profile = os.path.join(ipython, "profile_default")
    os.makedirs(profile, exist_ok=True)
    path = os.path.join(profile, name)
    with open(path, "w") as f:
        f.write(text)
    for directory, _dirs, files in os.walk(ipython):
        for entry in [directory, *(os.path.join(directory, f) for f in files)]:
            os.chown(entry, account.pw_uid, account.pw_gid)
    return path


def test_the_owners_config_files_are_read_as_the_owner(classroom):
    """alice's ipython_config.py in her profile applies to her pooled kernel (read as her, after the switch)."""
    account = pwd.getpwnam(PREFIX + "alice")
    path = owners_profile_file(classroom, "alice", "ipython_config.py",
                               "c.InteractiveShell.ast_node_interactivity = 'all'\n"
                               "c.IPKernelApp.exec_lines = ['_config_read_as = __import__(\"os\").getuid()']\n")
    kernel_id = take_pooled(classroom, "alice")
    try:
        assert ev(classroom, "alice", kernel_id, "_config_read_as") == str(account.pw_uid)
        assert ev(classroom, "alice", kernel_id, "get_ipython().ast_node_interactivity") == "'all'"
    finally:
        classroom["proxies"]["alice"].shutdown(kernel_id)
        os.remove(path)


def test_a_broken_config_file_is_logged_and_ignored(classroom):
    """A config file that does not run does not cost alice her kernel: it starts and runs code."""
    path = owners_profile_file(classroom, "alice", "ipython_kernel_config.py", "c.IPKernelApp(\n")
    kernel_id = take_pooled(classroom, "alice")
    try:
        assert ev(classroom, "alice", kernel_id, "1+1") == "2"
        with open(records.log_path(classroom["kernel_dir"], kernel_id)) as f:
            assert "ipython_kernel_config.py" in f.read()
    finally:
        classroom["proxies"]["alice"].shutdown(kernel_id)
        os.remove(path)


def test_history_goes_to_the_owners_database(classroom, pooled):
    """A pooled kernel's cells are saved in its owner's history.sqlite, a file of the owner's account."""
    profile = os.path.join(classroom["home_root"], "alice", ".ipython", "profile_default")
    database = os.path.join(profile, "history.sqlite")
    assert ev(classroom, "alice", pooled["alice"], "str(get_ipython().history_manager.hist_file)") \
        == repr(database)
    ev(classroom, "alice", pooled["alice"], "marker_cell = 1")
    saved = ev(classroom, "alice", pooled["alice"],
               "_hm = get_ipython().history_manager; _hm.writeout_cache(); import sqlite3; "
               "[r[0] for r in sqlite3.connect(str(_hm.hist_file)).execute("
               "\"select source from history where source like 'marker_cell%'\")]")
    assert ast.literal_eval(saved) == ["marker_cell = 1"]
    assert os.stat(database).st_uid == pwd.getpwnam(PREFIX + "alice").pw_uid


def test_a_pooled_kernel_cannot_reach_the_services_files_or_its_sockets(classroom, pooled):
    """The kernel directory (its own sockets and connection file are there), the users file, bob's home: PermissionError."""
    kernel_id = pooled["alice"]
    kernel_dir = classroom["kernel_dir"]
    prefix = records.ipc_prefix(kernel_dir, kernel_id)
    with open(records.connection_path(kernel_dir, kernel_id)) as f:
        info = json.load(f)
    assert (info["transport"], info["ip"]) == ("ipc", prefix)
    bob_home = os.path.join(classroom["home_root"], "bob")
    for path in (records.connection_path(kernel_dir, kernel_id), f"{prefix}-{info['shell_port']}",
                 classroom["users_file"], os.path.join(bob_home, "x")):
        assert run(classroom, "alice", kernel_id, f"open({path!r}).read()") \
            == "PermissionError", path
    for directory in (kernel_dir, bob_home):
        assert run(classroom, "alice", kernel_id, f"import os; os.listdir({directory!r})") \
            == "PermissionError", directory
    assert not os.path.exists(prefix + ".ipython")  # the pool's IPython directory is gone


def test_proc_self_is_the_kernels_own_and_not_anothers(classroom, pooled):
    """After the switch the kernel is dumpable: it reads its own /proc/self; bob cannot read alice's."""
    alice = pooled["alice"]
    assert ev(classroom, "alice", alice, "import ctypes; ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)") \
        == "1"  # PR_GET_DUMPABLE
    assert run(classroom, "alice", alice, "open('/proc/self/environ', 'rb').read(1)") == "done"
    assert run(classroom, "alice", alice, "import os; os.listdir('/proc/self/fd')") == "done"
    pid = int(ev(classroom, "alice", alice, "import os; os.getpid()"))
    assert uid_of(f"/proc/{pid}/status") == pwd.getpwnam(PREFIX + "alice").pw_uid
    for what in (f"open('/proc/{pid}/environ', 'rb').read(1)",
                 f"open('/proc/{pid}/mem', 'rb').read(1)", f"import os; os.listdir('/proc/{pid}/fd')",
                 f"import os, signal; os.kill({pid}, signal.SIGKILL)"):
        assert run(classroom, "bob", pooled["bob"], what) == "PermissionError", what
    assert ev(classroom, "alice", alice, "'still here'") == "'still here'"


def test_waiting_pooled_kernels_are_the_services_and_serve_no_one(classroom):
    """Kernels waiting in the pool run as root in their private directory; the pool refills after hand-outs."""
    service = classroom["service"]
    deadline = time.monotonic() + 120
    while len(waiting_ids(service)) < 2:  # refilled (the fixture took two)
        assert time.monotonic() < deadline and service.alive(), service.log()
        time.sleep(0.1)  # polling the log the reader thread fills
    for kernel_id in waiting_ids(service):
        pid = int(re.search(rf"forked kernel {kernel_id} \(python3\), pid (\d+)",
                            service.log()).group(1))
        assert uid_of(f"/proc/{pid}/status") == 0
        assert os.readlink(f"/proc/{pid}/cwd") == records.ipc_prefix(
            classroom["kernel_dir"], kernel_id) + ".ipython"


def test_a_student_cannot_reach_the_template_or_a_waiting_kernel(classroom, pooled):
    """From alice's pooled kernel: signalling or reading the template or a kernel still in the pool (someone's next kernel) is PermissionError."""
    service = classroom["service"]
    waiting = wait_for_waiting(service)[0]
    targets = [int(re.findall(r"fork template ready, pid (\d+)", service.log())[-1]),
               int(re.search(rf"forked kernel {waiting} \(python3\), pid (\d+)",
                             service.log()).group(1))]
    for pid in targets:
        for what in (f"import os, signal; os.kill({pid}, signal.SIGKILL)",
                     f"open('/proc/{pid}/mem', 'rb').read(1)",
                     f"open('/proc/{pid}/environ', 'rb').read(1)",
                     f"import os; os.listdir('/proc/{pid}/fd')",
                     f"import os; os.readlink('/proc/{pid}/cwd')"):
            assert run(classroom, "alice", pooled["alice"], what) == "PermissionError", (pid, what)
    assert waiting in waiting_ids(service)  # still waiting, untouched


def test_after_shutdown_nothing_of_a_kernel_returns_to_the_pool(classroom, pooled):
    """Alice's pooled kernel shut down is gone, files and process; her next kernel is another pooled one, fresh."""
    kernel_id = pooled["alice"]
    assert ev(classroom, "alice", kernel_id, "_secret = 'alice only'; import os; os.getpid()")
    pid = int(ev(classroom, "alice", kernel_id, "os.getpid()"))
    classroom["proxies"]["alice"].shutdown(kernel_id)
    assert not os.path.exists(f"/proc/{pid}/status") or uid_of(f"/proc/{pid}/status") == 0 \
        and pid not in [int(p) for p in re.findall(r"pid (\d+)", classroom["service"].log())]
    prefix = os.path.basename(records.ipc_prefix(classroom["kernel_dir"], kernel_id))
    assert [n for n in os.listdir(classroom["kernel_dir"])
            if kernel_id in n or n.startswith(prefix)] == []
    assert kernel_id not in waiting_ids(classroom["service"])
    again = take_pooled(classroom, "alice")
    try:
        assert again != kernel_id
        assert ev(classroom, "alice", again, "import os; ('_secret' in globals(), os.getpid())") \
            != repr((True, pid))
        assert ev(classroom, "alice", again, "'_secret' in globals()") == "False"
        assert ev(classroom, "bob", pooled["bob"], "'_secret' in globals()") == "False"
    finally:
        classroom["proxies"]["alice"].shutdown(again)


def test_interrupt_reaches_a_pooled_kernel(classroom, pooled):
    """An interrupt stops a long cell in a handed-out pooled kernel with KeyboardInterrupt."""
    kernel_id = pooled["alice"]
    marker = os.path.join(classroom["home_root"], "alice", "sleeping")
    runner = ServerProxy(f"http://alice:{PASSWORDS['alice']}@127.0.0.1:"
                         f"{classroom['service'].port}/jsonrpc")
    outcome = []
    cell = "open('sleeping', 'w').close(); import time; time.sleep(120)"
    thread = threading.Thread(target=lambda: outcome.append(
        run({"proxies": {"alice": runner}}, "alice", kernel_id, cell)))
    thread.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(marker):
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling for the file the cell writes as it starts
    classroom["proxies"]["alice"].interrupt(kernel_id)
    thread.join(60)
    os.remove(marker)
    assert outcome == ["KeyboardInterrupt"]
    assert ev(classroom, "alice", kernel_id, "'after'") == "'after'"


def test_a_pooled_kernel_restarted_stays_its_owners(classroom, pooled):
    """Restarting a handed-out pooled kernel forks a fresh one (not from the pool) as the same owner."""
    kernel_id = pooled["alice"]
    pid = int(ev(classroom, "alice", kernel_id, "import os; os.getpid()"))
    waiting = waiting_ids(classroom["service"])
    classroom["proxies"]["alice"].restart(kernel_id)
    assert int(ev(classroom, "alice", kernel_id, "import os; os.getpid()")) != pid
    assert ev(classroom, "alice", kernel_id, "os.getuid()") \
        == str(pwd.getpwnam(PREFIX + "alice").pw_uid)
    assert set(waiting) <= set(waiting_ids(classroom["service"]))  # the pool gave nothing


HOLD = """\
import subprocess
_held = []
try:
    while True:
        _held.append(subprocess.Popen(['sleep', '600']))
except OSError:
    pass
len(_held)"""


def test_an_account_at_its_process_limit_gets_no_kernel_and_the_reason(classroom):
    """Alice's processes at --kernel-processes: a kernel from the pool is refused, saying why; once they end, she gets one."""
    alice, first = classroom["proxies"]["alice"], classroom["first"]["alice"]
    wait_for_waiting(classroom["service"])
    assert int(ev(classroom, "alice", first, HOLD)) > 0
    try:
        with pytest.raises(Exception) as refused:
            alice.start_kernel()
        assert "--kernel-processes" in str(refused.value), refused.value
    finally:
        ev(classroom, "alice", first, "for _p in _held: _p.kill(); _p.wait()\nlen(_held)")
    alice.shutdown(take_pooled(classroom, "alice"))


def test_a_pooled_kernel_that_dies_is_restarted_as_its_owner(classroom, pooled):
    """Bob's handed-out kernel killed: the service restarts it (a fresh fork, not from the pool) as bob."""
    kernel_id = pooled["bob"]
    service = classroom["service"]
    pid = int(ev(classroom, "bob", kernel_id, "import os; os.getpid()"))
    os.kill(pid, signal.SIGKILL)
    wait_for_line(service, f"kernel {kernel_id} died")
    deadline = time.monotonic() + 120
    while True:
        try:
            new_pid = int(ev(classroom, "bob", kernel_id, "import os; os.getpid()"))
            break
        except Exception:  # noqa: BLE001 - dead or restarting: ask again, bounded
            assert time.monotonic() < deadline, service.log()
            time.sleep(0.2)
    assert new_pid != pid
    assert ev(classroom, "bob", kernel_id, "os.getuid()") == str(pwd.getpwnam(PREFIX + "bob").pw_uid)


def test_a_kept_pooled_kernel_is_found_again_by_the_next_service(classroom):
    """--keep-kernels: a handed-out pooled kernel outlives its service (and template); the next re-attaches it, still alice's."""
    directory = make_directory()
    try:
        service, proxies = start_service(directory, "--keep-kernels", *POOL)
        try:
            wait_for_line(service, "2 in the pool")
            assert proxies["alice"].eval_cell("x = 41; x") == "41"
            (model,) = proxies["alice"].kernels()
            assert f"handed out pooled kernel {model['id']}" in service.log()
        finally:
            service.stop()
        service, proxies = start_service(directory, "--kernel-factory", "fork")
        try:
            wait_for_line(service, f"re-attached kernel {model['id']}")
            assert proxies["alice"].eval_cell("x + 1", model["id"]) == "42", service.log()
            assert proxies["alice"].eval_cell("import os; os.getuid()", model["id"]) \
                == str(pwd.getpwnam(PREFIX + "alice").pw_uid)
            assert len(proxies["alice"].kernels()) == 1  # the pooled ones of the first did not last
        finally:
            service.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# The attacks of test_kernel_isolation, on the students' first kernels (pooled ones;
# test_a_restarted_kernel_is_confined_again replaces alice's by a fresh fork).
from tests.test_kernel_isolation import (  # noqa: E402,F401
    test_a_file_past_the_file_size_limit_is_efbig_not_a_killed_kernel,
    test_a_fork_loop_stops_at_the_process_limit_and_hurts_no_one,
    test_a_memory_hog_gets_memory_error_and_hurts_no_one,
    test_a_restarted_kernel_is_confined_again,
    test_a_student_cannot_read_anothers_files,
    test_a_student_cannot_signal_anothers_kernel,
    test_kernels_run_as_their_users_accounts,
    test_kernels_run_at_the_configured_nice_value_and_cannot_lower_it,
    test_opening_files_stops_at_the_open_files_limit,
)
