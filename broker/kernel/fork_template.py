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
  "signal": n}`` (it is the kernels' parent, so it reaps them).

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
``WEBKERNEL_CONFINE_SOURCE``);
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


def _child(request):
    """In the forked child: become the kernel. Never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        os.environ.clear()
        os.environ.update(request["env"])
        # recognisable as this kernel: the service's connection file stays open
        # (opened before the account switch: the kernel directory is the service's)
        os.open(request.get("marker") or request["connection_file"], os.O_RDONLY)
        if request.get("confine"):
            _confine(*request["confine"])
        elif request.get("cwd"):
            os.chdir(request["cwd"])
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        sys.argv = [sys.executable, *request["argv"]]
        from ipykernel import kernelapp
        kernelapp.IPKernelApp.launch_instance(argv=request["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _fork(request):
    why = fork_safe(checks())
    if why is not None:
        return {"failed": request["fork"], "error": f"cannot fork safely: {why}"}
    pid = os.fork()
    if pid == 0:
        _child(request)
    return {"forked": request["fork"], "pid": pid, "start_time": _start_time(pid)}


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
    stdin = os.fdopen(0, "rb", buffering=0)
    buffered = b""
    while True:
        try:
            chunk = stdin.read(65536)
        except InterruptedError:
            continue
        if not chunk:
            return 0
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            if line.strip():
                request = json.loads(line)
                try:
                    answer = _fork(request)
                except OSError as e:
                    answer = {"failed": request.get("fork"), "error": str(e)}
                _say(answer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
