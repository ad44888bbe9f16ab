"""The fork server's template: a Python process that has imported ipykernel and forks kernels.

This file is a standalone program (it imports nothing of ``broker``): the
service runs it with the kernelspec's interpreter as ``python -c <this
source> [--preload MODULE]...``, in a session of its own, with a control pipe
on stdin (requests) and stdout (answers), one JSON object per line:

* at start, after importing ipykernel, IPython, the modules ipykernel
  imports while it starts, and each ``--preload`` module, it answers
  ``{"ready": pid, "preloaded": [...], "checks": {...}}``;
* ``{"fork": kernel_id, "argv": [...], "connection_file": path, "marker": path,
  "log": path, "cwd": dir or null, "env": {...}, "confine": [...] or null}`` is answered
  ``{"forked": kernel_id, "pid": pid, "start_time": ticks}`` or
  ``{"failed": kernel_id, "error": text}``;
* whenever a forked kernel ends it says ``{"exited": pid, "exit_code": n,
  "signal": n}`` (it is the kernels' parent, so it reaps them);
* for the warm pool of multi-user mode, ``{"prepare": kernel_id, "argv", "connection_file",
  "marker", "log", "cwd", "env"}`` forks a *pooled child* that runs
  ``IPKernelApp.initialize`` as the template's account (root) in a private
  directory, with no user's anything, and does not serve; it is answered
  ``{"prepared": kernel_id, "pid", "start_time"}`` once the child has
  initialised (``{"failed": ...}`` if it exited first). ``{"assign": kernel_id,
  "confine": [...], "env": {...}}`` passes the child its owner over a pipe of
  its own (once: the pipe is then closed) and is answered ``{"assigned":
  kernel_id}``. The child then confines itself (below), takes its owner's
  environment and IPython paths (IPython directory, profile, ``%store``
  database, home and directory history), reads the config files of its
  owner's profile, opens its owner's history database, runs the startup files of its
  owner's profile and only then starts serving. A pooled child whose pipe
  closes unassigned (the template went) exits.

Before every fork it checks that nothing which must not be shared across a
fork exists yet: no thread but its own (``threading.active_count() == 1``),
no ZeroMQ context (``zmq.Context._instance is None``), no SQLite connection
(IPython's history database). A check that fails refuses the fork.

In the child, before any kernel code: ``setsid``; stdin from ``/dev/null``,
stdout and stderr to the kernel's log; every other inherited descriptor
closed (the control pipe included); the kernel's environment and working
directory; the service's connection file (*marker*) opened and kept open, so
the service can recognise the process as that kernel; the confinement
(limits, then the OS account switch, then the account's directory: the same
``confine`` function the spawn launcher runs, given as source at start in
``WEBKERNEL_CONFINE_SOURCE``; glibc applies each set*id call to every thread
of the process, and ``confine`` renices every thread, so a pooled child's
threads are confined too; then ``PR_SET_DUMPABLE`` 1, for a uid switch without
exec leaves the process undumpable and its ``/proc/self`` root's);
random seeds drawn afresh (``random``, and ``numpy.random`` if loaded).
Then ipykernel's ``IPKernelApp`` starts with the kernel's own connection file
(own ports, own HMAC key); its ZeroMQ context, threads, event loop and
history database are all created there.

At EOF on stdin (the service went away) the template exits; kernels it
forked run on (they are in sessions of their own), as spawned kernels do.
"""

import gc
import importlib
import json
import os
import random
import select
import signal
import sys
import threading
import traceback

#: modules IPKernelApp imports while it initializes and starts: imported in the
#: template, so children share them instead of importing them each
WARM_MODULES = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.iostream",
    "ipykernel.heartbeat", "ipykernel.control", "ipykernel.parentpoller", "ipykernel.comm",
    "ipykernel.displayhook", "ipykernel.eventloops", "ipykernel.jsonutil",
    "ipykernel.debugger", "ipykernel.compiler", "ipykernel.kernelbase",
    "IPython", "IPython.core.interactiveshell", "IPython.core.completer",
    "IPython.core.history", "IPython.core.magics", "IPython.core.profiledir",
    "IPython.core.formatters", "IPython.core.display", "IPython.core.oinspect",
    "IPython.lib.pretty", "IPython.utils.tokenutil",
    "jupyter_client.session", "jupyter_client.connect", "jupyter_core.paths",
    "zmq", "zmq.eventloop.zmqstream", "tornado.ioloop", "tornado.queues", "asyncio",
    "comm", "debugpy", "jedi", "parso", "psutil", "sqlite3", "pygments", "pygments.lexers",
    "matplotlib_inline.backend_inline", "IPython.core.completerlib", "IPython.core.debugger",
    "IPython.extensions.storemagic", "pdb", "bdb", "cmd", "faulthandler",
    "tornado.platform.asyncio",
)

_confine = None


def _say(message):
    """One answer line on the control pipe (a single write, atomic below PIPE_BUF)."""
    os.write(1, (json.dumps(message) + "\n").encode("utf-8"))


def _sqlite_connections():
    import sqlite3
    return sum(1 for o in gc.get_objects() if isinstance(o, sqlite3.Connection))


def checks():
    """What must not exist before a fork, as found now."""
    zmq = sys.modules.get("zmq")
    return {"threads": threading.active_count(),
            "zmq_context": bool(zmq is not None and getattr(zmq.Context, "_instance", None)),
            "sqlite_connections": _sqlite_connections()}


def fork_safe(found):
    """None if *found* (from checks()) allows a fork, else why not."""
    if found["threads"] != 1:
        return f"{found['threads']} threads run in the template"
    if found["zmq_context"]:
        return "a ZeroMQ context exists in the template"
    if found["sqlite_connections"]:
        return "an SQLite connection is open in the template"
    return None


def _reap(signum=None, frame=None):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        for kernel_id, (child, _fd) in list(_unassigned.items()):
            if child == pid:
                _let_go(kernel_id)
        _say({"exited": pid,
              "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
              "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None})


def _start_time(pid):
    """The process's start time in clock ticks (field 22 of /proc/<pid>/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _detach(request, keep=()):
    """The forked child's first steps: own session, stdio, no inherited descriptor but *keep*."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, top)
    os.environ.clear()
    os.environ.update(request["env"])
    # recognisable as this kernel: the service's connection file stays open
    # (opened before the account switch: the kernel directory is the service's)
    os.open(request.get("marker") or request["connection_file"], os.O_RDONLY)


def _reseed():
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def _make_dumpable():
    """PR_SET_DUMPABLE 1: a uid switch without exec leaves the process undumpable (its
    /proc/self root's); the kernel is wholly its account's now, so make it its own again."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 1, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 1)")


def _switch(confine):
    """Confine this process (every thread: glibc applies set*id to all of them) as *confine* says."""
    _confine(*confine)
    if confine[0] >= 0:
        _make_dumpable()
        _room_for_a_thread()


def _room_for_a_thread():
    """Linux refuses an account past ``RLIMIT_NPROC`` at a uid switch only when an exec
    follows; a forked kernel has none, so an account already at ``--kernel-processes`` would
    get a kernel that cannot start a thread. One is started now: refused, the kernel ends
    with the reason in its log (the start's error shows it)."""
    import threading
    try:
        probe = threading.Thread(target=int, name="webkernel-room-probe")
        probe.start()
        probe.join()
    except RuntimeError:
        # to the kernel's log itself: a pooled kernel's sys.stderr is ipykernel's by now
        os.write(2, b"webkernel: this account is at its limit of processes and threads "
                    b"(--kernel-processes): end some of its processes or kernels, then "
                    b"start again\n")
        raise SystemExit(1) from None


def _owners_caches():
    """jedi's and parso's cache folders, which they work out from HOME when imported (in the
    template, from the service's HOME): the kernel's own now (Linux's defaults, as theirs)."""
    settings = sys.modules.get("jedi.settings")
    if settings is not None:
        settings.cache_directory = os.path.expanduser(
            os.path.join(os.getenv("XDG_CACHE_HOME") or "~/.cache", "jedi"))
    cache = sys.modules.get("parso.cache")
    if cache is not None and hasattr(cache, "_get_default_cache_path"):
        cache._default_cache_path = cache._get_default_cache_path()


def _finish(code):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _live(life):
    """Run *life*, a forked kernel's, and leave the process with its exit code (as
    ``python -m ipykernel_launcher`` would: SystemExit's code, 1 for an error). Never returns."""
    try:
        life()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    _finish(code)


def _child(request):
    """In the forked child: become the kernel. Never returns."""
    _live(lambda: _serve(request))


def _serve(request):
    _detach(request)
    if request.get("confine"):
        _switch(request["confine"])
    elif request.get("cwd"):
        os.chdir(request["cwd"])
    _owners_caches()
    _reseed()
    sys.argv = [sys.executable, *request["argv"]]
    from ipykernel import kernelapp
    kernelapp.IPKernelApp.launch_instance(argv=request["argv"])


def _read_line(fd, most=1 << 20):
    """One line from *fd* (b"" at EOF first), at most *most* bytes."""
    data = b""
    while not data.endswith(b"\n") and len(data) < most:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _pooled_child(request, status, assignment):
    """In a pooled child (multi-user mode): initialise the kernel as the service, unassigned;
    say so on *status*; wait on *assignment* for its owner; take the owner's confinement and
    IPython paths; only then run startup code and serve. Never returns."""
    _live(lambda: _serve_pooled(request, status, assignment))


def _serve_pooled(request, status, assignment):
    _detach(request, keep=(status, assignment))
    os.chdir(request["cwd"])
    sys.argv = [sys.executable, *request["argv"]]
    from ipykernel import kernelapp
    app = kernelapp.IPKernelApp.instance()
    run_startup_code, app.init_code = app.init_code, lambda: None
    app.initialize(request["argv"])
    os.write(status, b"ready\n")
    os.close(status)
    line = _read_line(assignment)
    os.close(assignment)
    if not line.endswith(b"\n"):
        _finish(0)  # the template went, or let it go: no owner, no kernel
    owner = json.loads(line)
    _switch(owner["confine"])
    for name in request["env"]:
        os.environ.pop(name, None)
    os.environ.update(owner["env"])
    _owners_ipython(app)
    _owners_config(app)
    _owners_history(app.shell)
    _owners_caches()
    _reseed()
    run_startup_code()
    app.start()


def _owners_ipython(app):
    """What IPython took from HOME, IPYTHONDIR and the cwd while initialising: now the owner's."""
    from pathlib import Path
    from IPython.core.profiledir import ProfileDir
    from IPython.paths import get_ipython_dir
    from IPython.utils.path import get_home_dir
    ipython_dir = get_ipython_dir()
    profile = ProfileDir.create_profile_dir_by_name(ipython_dir, app.profile)
    shell = app.shell
    app.ipython_dir = shell.ipython_dir = ipython_dir
    app.profile_dir = shell.profile_dir = app.kernel.profile_dir = profile
    if isinstance(getattr(type(shell), "db", None), property):
        shell.db = None  # IPython's %store database: made again, in the owner's profile, when used
    elif getattr(shell, "db", None) is not None:  # older IPython: made at start, so make it again
        shell.db = type(shell.db)(os.path.join(profile.location, "db"))
    shell.home_dir = get_home_dir()
    shell.starting_dir = os.getcwd()
    history = shell.history_manager.dir_hist
    history[:] = [Path.cwd() if not history or isinstance(history[0], Path) else os.getcwd()]


def _owners_config(app):
    """The owner's own config files (``ipython_config.py``, ``ipython_kernel_config.py`` in
    their profile), read now, as the owner: the pool's initialisation, as the service, read
    none. The command line keeps priority; a broken file is logged, as IPython does. Settings
    IPython reads at start only (the shell's class, the kernel's ports) take no effect."""
    app.config_file_paths = [app.profile_dir.location]
    app.load_config_file()
    for configurable in (app.shell, app.kernel):
        configurable.update_config(app.config)
    app.init_extensions()


def _owners_history(shell):
    """The owner's history database (``history.sqlite`` in their profile) instead of the
    in-memory one the pool's initialisation used (no database may be opened before the
    fork, nor as the service)."""
    from IPython.core.history import HistoryManager
    memory = shell.history_manager
    owners = HistoryManager(shell=shell, parent=shell,
                            hist_file=os.path.join(shell.profile_dir.location, "history.sqlite"))
    owners.dir_hist[:] = memory.dir_hist
    shell.configurables[:] = [owners if c is memory else c for c in shell.configurables]
    shell.history_manager = owners


def _fork(request):
    why = fork_safe(checks())
    if why is not None:
        return {"failed": request["fork"], "error": f"cannot fork safely: {why}"}
    pid = os.fork()
    if pid == 0:
        _child(request)
    return {"forked": request["fork"], "pid": pid, "start_time": _start_time(pid)}


#: pooled children initialising: their status pipe's read end -> (kernel id, pid)
_initialising = {}
#: pooled children waiting for an owner: kernel id -> (pid, their assignment pipe's write end)
_unassigned = {}


def _prepare(request):
    """Fork a pooled child; it is answered ``prepared`` (or ``failed``) once it has initialised."""
    kernel_id = request["prepare"]
    why = fork_safe(checks())
    if why is not None:
        return {"failed": kernel_id, "error": f"cannot fork safely: {why}"}
    status_r, status_w = os.pipe()
    assign_r, assign_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _pooled_child(request, status_w, assign_r)
    os.close(status_w)
    os.close(assign_r)
    _initialising[status_r] = (kernel_id, pid)
    _unassigned[kernel_id] = (pid, assign_w)
    return None


def _initialised(fd):
    """A pooled child said it is ready, or closed its status pipe (it exited): tell the service."""
    said = os.read(fd, 64)
    os.close(fd)
    kernel_id, pid = _initialising.pop(fd)
    if said.startswith(b"ready"):
        return {"prepared": kernel_id, "pid": pid, "start_time": _start_time(pid)}
    _let_go(kernel_id)
    return {"failed": kernel_id, "error": "the pooled kernel exited while it initialised "
                                          "(its log says why)"}


def _let_go(kernel_id):
    entry = _unassigned.pop(kernel_id, None)
    if entry is not None:
        os.close(entry[1])


def _assign(request):
    """Send a pooled child its owner (confinement and environment): it then starts serving."""
    kernel_id = request["assign"]
    entry = _unassigned.pop(kernel_id, None)
    if entry is None:
        return {"failed": kernel_id, "error": "no pooled kernel of that id waits here"}
    try:
        os.write(entry[1], (json.dumps({"confine": request["confine"],
                                        "env": request["env"]}) + "\n").encode("utf-8"))
    except OSError as e:
        return {"failed": kernel_id, "error": f"the pooled kernel is gone ({e})"}
    finally:
        os.close(entry[1])
    return {"assigned": kernel_id}


def _handle(request):
    if "prepare" in request:
        return _prepare(request)
    if "assign" in request:
        return _assign(request)
    return _fork(request)


def main(argv):
    global _confine
    try:
        os.setsid()
    except OSError:
        pass
    preload = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--preload"]
    confine_source = os.environ.pop("WEBKERNEL_CONFINE_SOURCE", None)
    if confine_source:
        namespace = {}
        exec(confine_source, namespace)
        _confine = namespace["confine"]
    loaded = []
    for name in WARM_MODULES + tuple(preload):
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as e:  # noqa: BLE001 - a missing optional module is only slower
            if name in preload:
                print(f"webkernel fork template: cannot preload {name}: {e!r}", file=sys.stderr)
    gc.collect()
    gc.freeze()  # the collector must not touch (and so copy) the shared objects in children
    signal.signal(signal.SIGCHLD, _reap)
    _say({"ready": os.getpid(), "preloaded": [n for n in preload if n in loaded],
          "checks": checks()})
    buffered = b""
    while True:
        readable, _, _ = select.select([0, *_initialising], [], [])
        for fd in readable:
            if fd != 0:
                _say(_initialised(fd))
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return 0
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                if line.strip():
                    _answer(json.loads(line))


def _answer(request):
    try:
        answer = _handle(request)
    except OSError as e:
        answer = {"failed": request.get("fork") or request.get("prepare")
                  or request.get("assign"), "error": str(e)}
    if answer is not None:
        _say(answer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
