"""The fork server's logic with no real template: a fake process reactor plays it.

And the template's own pre-fork checks, run in this process.
"""

import json
import os
import tempfile
import signal
import threading

from jupyter_client.kernelspec import KernelSpecManager
from twisted.internet import defer
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from broker.kernel import fork_template
from broker.kernel.adoption import POLL_INTERVAL, ProcessGone
from broker.kernel.fork_launcher import ForkingLauncher
from broker.kernel.forking import RESTART_DELAY, ForkFailed, ForkServer, fork_arguments
from broker.kernel.launcher import KernelExit, LaunchedKernel
from broker.kernel.testing import FakeProcessReactor

#: a pid no process has (above Linux's largest pid_max, 2**22)
GONE_PID = 2**22 + 12345


def request(kernel_id="k1"):
    return {"fork": kernel_id, "argv": ["-f", "/x.json"], "connection_file": "/x.json",
            "log": "/x.log", "cwd": None, "env": {}, "confine": None}


class ForkServerTests(SynchronousTestCase):
    """Requests go to the template once it is ready; answers, exits and its death come back."""

    def setUp(self):
        self.reactor = FakeProcessReactor()
        self.server = ForkServer(self.reactor, "/usr/bin/python3", {"PATH": "/bin"}, ["numpy"])
        self.server.start()
        self.template = self.reactor.spawned[-1]
        self.written = []
        self.template.process.write = lambda data: self.written.append(json.loads(data))

    def say(self, message):
        self.template.protocol.outReceived(json.dumps(message).encode() + b"\n")

    def test_template_runs_the_template_program_with_preloads(self):
        """The template is the interpreter running fork_template's source, with --preload numpy."""
        args = self.template.args
        self.assertEqual(args[:2], ["/usr/bin/python3", "-c"])
        self.assertIn("def _fork(request)", args[2])
        self.assertEqual(args[3:], ["--preload", "numpy"])

    def test_request_waits_for_ready_then_is_answered(self):
        """A fork asked before the template is ready is sent once it is, and fires with the answer."""
        d = self.server.fork(request())
        self.assertEqual(self.written, [])
        self.say({"ready": 77, "preloaded": ["numpy"], "checks": {}})
        self.assertEqual([m["fork"] for m in self.written], ["k1"])
        self.assertNoResult(d)
        self.say({"forked": "k1", "pid": 1234, "start_time": 5})
        self.assertEqual(self.successResultOf(d)["pid"], 1234)

    def test_refusal_is_a_fork_failure(self):
        """A template that refuses (unsafe to fork) fails the request with what it said."""
        self.say({"ready": 77})
        d = self.server.fork(request())
        self.say({"failed": "k1", "error": "cannot fork safely: 2 threads run in the template"})
        self.assertIn("2 threads", self.failureResultOf(d, ForkFailed).getErrorMessage())

    def test_reported_exit_fires_the_kernels_exited(self):
        """The template's exit report of a watched kernel fires its exited with code and signal."""
        from broker.kernel.forking import ForkedKernel
        kernel = ForkedKernel("k1", "python3", {}, "/x.json", 1234, None, self.reactor)
        self.server.watch(kernel)
        self.say({"exited": 1234, "exit_code": None, "signal": 9})
        self.assertEqual(self.successResultOf(kernel.exited), KernelExit(None, 9))

    def test_a_kernel_is_not_polled_while_its_template_reports(self):
        """While the template runs, a forked kernel costs no timer: a vanished pid goes unnoticed by polling."""
        from broker.kernel.forking import ForkedKernel
        self.say({"ready": 77})
        kernel = ForkedKernel("k1", "python3", {}, "/x.json", GONE_PID, None, self.reactor)
        self.server.watch(kernel)
        self.reactor.advance(60 * POLL_INTERVAL)
        self.assertNoResult(kernel.exited)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_template_death_makes_its_kernels_polled(self):
        """Once the template that reaps them is gone, its kernels are polled and a gone one is noticed."""
        from broker.kernel.forking import ForkedKernel
        self.say({"ready": 77})
        kernel = ForkedKernel("k1", "python3", {}, "/x.json", GONE_PID, None, self.reactor)
        self.server.watch(kernel)
        self.template.process.exit(signal=9)
        self.reactor.advance(POLL_INTERVAL)
        self.assertIsInstance(self.successResultOf(kernel.exited), ProcessGone)

    def test_a_kernel_watched_after_its_template_died_is_polled(self):
        """A fork answered just before the template died is polled from the start."""
        from broker.kernel.forking import ForkedKernel
        self.say({"ready": 77})
        self.template.process.exit(signal=9)
        kernel = ForkedKernel("k1", "python3", {}, "/x.json", GONE_PID, None, self.reactor)
        self.server.watch(kernel)
        self.reactor.advance(POLL_INTERVAL)
        self.assertIsInstance(self.successResultOf(kernel.exited), ProcessGone)

    def test_template_death_fails_pending_and_restarts_it(self):
        """When the template dies, waiting forks fail at once and a new template starts RESTART_DELAY later."""
        self.say({"ready": 77})
        d = self.server.fork(request())
        self.template.process.exit(signal=9)
        self.assertIn("fork template exited", self.failureResultOf(d, ForkFailed).getErrorMessage())
        self.assertEqual(len(self.reactor.spawned), 1)
        self.reactor.advance(RESTART_DELAY)
        self.assertEqual(len(self.reactor.spawned), 2)

    def test_stop_closes_the_pipe_and_does_not_restart(self):
        """stop() closes the template's stdin; its exit then is not a death to restart from."""
        self.say({"ready": 77})
        stopped = self.server.stop()
        self.assertTrue(self.template.process.stdin_closed)
        self.template.process.exit(0)
        self.successResultOf(stopped)
        self.reactor.advance(RESTART_DELAY)
        self.assertEqual(len(self.reactor.spawned), 1)
        self.failureResultOf(self.server.fork(request()), ForkFailed)


class ForkArgumentsTests(SynchronousTestCase):
    """Which kernelspecs can be forked."""

    def test_ipykernel_argv(self):
        """python -m ipykernel_launcher (or ipykernel) gives IPKernelApp's arguments."""
        self.assertEqual(fork_arguments(["/py", "-m", "ipykernel_launcher", "-f", "c.json"]),
                         ["-f", "c.json"])
        self.assertEqual(fork_arguments(["/py", "-m", "ipykernel", "-f", "c.json", "--x"]),
                         ["-f", "c.json", "--x"])

    def test_other_kernels_are_not_forked(self):
        """Any other argv is a ValueError that says why."""
        for argv in (["/usr/bin/R", "--slave", "-f", "c.json"], ["/py", "-m", "other", "-f"],
                     ["/py"]):
            with self.assertRaises(ValueError):
                fork_arguments(argv)


class ForkingLauncherTests(SynchronousTestCase):
    """A kernelspec that cannot be forked is spawned, and the log says why."""

    def test_non_ipykernel_spec_is_spawned(self):
        """A kernelspec whose argv is not ipykernel's goes through spawn; the reason is logged once."""
        root = tempfile.mkdtemp(prefix="webkernel-specs-")
        spec_dir = os.path.join(root, "kernels", "echo")
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": ["python", "-c", "pass", "{connection_file}"],
                       "display_name": "echo", "language": "python"}, f)
        manager = KernelSpecManager(kernel_dirs=[os.path.join(root, "kernels")])
        reactor = FakeProcessReactor()
        launcher = ForkingLauncher(reactor, tempfile.mkdtemp(), spec_manager=manager)
        with capturedLogs() as logged:
            kernel = self.successResultOf(launcher.launch("echo", "k1"))
            self.assertIsInstance(kernel, LaunchedKernel)
            self.assertEqual(launcher.servers, {})
            self.successResultOf(launcher.launch("echo", "k2"))
        reasons = [e for e in logged if "spawned, not forked" in e.get("log_format", "")]
        self.assertEqual(len(reasons), 1)
        self.assertIn("ipykernel_launcher", reasons[0]["why"])


    def test_confined_template_runs_in_the_root_directory(self):
        """Multi-user mode's (root) template runs in / with -s: its sys.path[0] ('' for -c) is no directory a student can write to."""
        root = tempfile.mkdtemp(prefix="webkernel-specs-")
        spec_dir = os.path.join(root, "kernels", "python3")
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f",
                                "{connection_file}"], "display_name": "py", "language": "python"}, f)
        manager = KernelSpecManager(kernel_dirs=[os.path.join(root, "kernels")])
        for confined, path, flags in ((True, "/", ["-s"]), (False, None, [])):
            reactor = FakeProcessReactor()
            launcher = ForkingLauncher(reactor, tempfile.mkdtemp(), spec_manager=manager)
            launcher.server_for("/usr/bin/python3", manager.get_kernel_spec("python3"), confined)
            template = reactor.spawned[-1]
            self.assertEqual((template.path, template.args[1:1 + len(flags)]), (path, flags))

class TemplateChecksTests(SynchronousTestCase):
    """The template refuses to fork when something unshareable exists."""

    def test_clean(self):
        """One thread, no context, no connection: forking is allowed."""
        self.assertIsNone(fork_template.fork_safe(
            {"threads": 1, "zmq_context": False, "sqlite_connections": 0}))

    def test_a_second_thread_refuses(self):
        """A thread running besides the template's own is found by checks() and refuses the fork."""
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(stop.set)
        found = fork_template.checks()
        self.assertGreater(found["threads"], 1)
        self.assertIn("threads run in the template", fork_template.fork_safe(found))

    def test_zmq_context_and_sqlite_refuse(self):
        """A ZeroMQ context or an open SQLite connection refuses the fork."""
        self.assertIn("ZeroMQ", fork_template.fork_safe(
            {"threads": 1, "zmq_context": True, "sqlite_connections": 0}))
        import sqlite3
        connection = sqlite3.connect(":memory:")
        self.addCleanup(connection.close)
        found = fork_template.checks()
        self.assertGreaterEqual(found["sqlite_connections"], 1)
        self.assertIn("SQLite", fork_template.fork_safe({**found, "threads": 1}))


class ForkOptionsTests(SynchronousTestCase):
    """--kernel-factory and --preload on the command line."""

    def test_fork_and_preloads(self):
        """--kernel-factory fork with repeated --preload reaches the options in order."""
        from broker.tap import Options
        options = Options()
        options.parseOptions(["--anonymous", "--kernel-factory", "fork",
                              "--preload", "numpy", "--preload", "sympy"])
        self.assertEqual((options["kernel-factory"], options["preload"]),
                         ("fork", ["numpy", "sympy"]))

    def test_unknown_factory_is_refused(self):
        """A factory other than spawn or fork is a usage error naming both."""
        from twisted.python import usage
        from broker.tap import Options
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--anonymous", "--kernel-factory", "clone"])
        self.assertIn("spawn or fork", str(caught.exception))

    def test_service_builds_the_forking_launcher(self):
        """The kernel host service of --kernel-factory fork has a ForkingLauncher with the preloads."""
        from broker.kernel.service import KernelHostService
        service = KernelHostService(None, "webkernel", FakeProcessReactor(), tempfile.mkdtemp(),
                                    kernel_factory="fork", preload=("numpy",))
        self.assertIsInstance(service.launcher, ForkingLauncher)
        self.assertEqual(service.launcher.preload, ("numpy",))


class TemplatePipeTests(SynchronousTestCase):
    """What the template writes is read in bounded lines."""

    def test_endless_line_is_dropped_not_kept(self):
        """Output with no newline past MAX_LINE is dropped; the next answer is still read."""
        from broker.kernel.forking import MAX_LINE, TemplateProtocol
        answers = []
        server = type("Server", (), {"answer": lambda self, m: answers.append(m)})()
        template = TemplateProtocol(server)
        template.outReceived(b"x" * (MAX_LINE + 1))
        self.assertEqual(template._buffer, b"")
        template.outReceived(b'\n{"ready": 5}\n')
        self.assertEqual(answers, [{"ready": 5}])
        template.errReceived(b"y" * (MAX_LINE + 10))
        self.assertEqual(template._err, b"")


class PoolRequestTests(SynchronousTestCase):
    """The pool's requests of multi-user mode: ``prepare`` and ``assign`` are answered by kernel id;
    a prepare given up (canceled) is forgotten, and its child, should it still say prepared, killed."""

    def setUp(self):
        self.reactor = FakeProcessReactor()
        self.server = ForkServer(self.reactor, "/usr/bin/python3", {"PATH": "/bin"})
        self.server.start()
        self.template = self.reactor.spawned[-1]
        self.written = []
        self.template.process.write = lambda data: self.written.append(json.loads(data))
        self.say({"ready": 77})

    def say(self, message):
        self.template.protocol.outReceived(json.dumps(message).encode() + b"\n")

    def test_prepare_and_assign_fire_with_their_answers(self):
        """``prepared`` answers the prepare, ``assigned`` the assign of the same kernel id."""
        prepared = self.server.fork({"prepare": "k1", "argv": []})
        self.say({"prepared": "k1", "pid": 1234, "start_time": 5})
        self.assertEqual(self.successResultOf(prepared)["pid"], 1234)
        assigned = self.server.fork({"assign": "k1", "confine": [1, 1, 0, "/h", ""], "env": {}})
        self.assertEqual([next(k for k in ("prepare", "assign") if k in m) for m in self.written],
                         ["prepare", "assign"])
        self.assertNoResult(assigned)
        self.say({"assigned": "k1"})
        self.assertEqual(self.successResultOf(assigned), {"assigned": "k1"})

    def test_a_refused_assignment_fails(self):
        """A ``failed`` answer to an assign (the child is gone) is a ForkFailed with its reason."""
        assigned = self.server.fork({"assign": "k2", "confine": [], "env": {}})
        self.say({"failed": "k2", "error": "no pooled kernel of that id waits here"})
        self.assertIn("no pooled kernel", str(self.failureResultOf(assigned, ForkFailed).value))

    def test_late_prepared_child_is_killed(self):
        """After the cancel, a ``prepared`` answer kills that pid and fires nothing."""
        from broker.kernel import forking
        killed = []
        self.patch(forking.os, "kill", lambda pid, sig: killed.append((pid, sig)))
        prepared = self.server.fork({"prepare": "k3", "argv": []})
        prepared.cancel()
        self.failureResultOf(prepared, defer.CancelledError)
        self.assertNotIn("k3", self.server.pending)
        self.say({"prepared": "k3", "pid": 5555, "start_time": 1})
        self.assertEqual(killed, [(5555, signal.SIGKILL)])


class TemplatePoolTests(SynchronousTestCase):
    """The template's side of the pool, run in this process on real pipes (no fork)."""

    def tearDown(self):
        for fd in list(fork_template._initialising):
            os.close(fd)
        fork_template._initialising.clear()
        for kernel_id in list(fork_template._unassigned):
            fork_template._let_go(kernel_id)

    def waiting_child(self, kernel_id, pid=4242):
        """Pipes as a prepared child would have them; the child's ends, to play it."""
        status_r, status_w = os.pipe()
        assign_r, assign_w = os.pipe()
        fork_template._initialising[status_r] = (kernel_id, pid)
        fork_template._unassigned[kernel_id] = (pid, assign_w)
        return status_r, status_w, assign_r

    def test_ready_child_is_prepared_and_gets_its_owner_once(self):
        """A child saying ready is answered ``prepared``; its assignment reaches it once, then the pipe closes."""
        status_r, status_w, assign_r = self.waiting_child("k1")
        os.write(status_w, b"ready\n")
        os.close(status_w)
        answer = fork_template._initialised(status_r)
        self.assertEqual((answer["prepared"], answer["pid"]), ("k1", 4242))
        owner = {"assign": "k1", "confine": [1000, 1000, 5, "/home/a", ""], "env": {"USER": "a"}}
        self.assertEqual(fork_template._handle(owner), {"assigned": "k1"})
        self.assertEqual(json.loads(fork_template._read_line(assign_r)),
                         {"confine": owner["confine"], "env": owner["env"]})
        self.assertEqual(os.read(assign_r, 1), b"")   # closed: no second owner can come
        os.close(assign_r)
        self.assertEqual(fork_template._handle(owner)["failed"], "k1")

    def test_child_that_exits_while_initialising_fails_its_prepare(self):
        """EOF on the status pipe before ``ready`` answers ``failed``, and its assignment pipe is let go."""
        status_r, status_w, assign_r = self.waiting_child("k2")
        os.close(status_w)
        answer = fork_template._initialised(status_r)
        self.assertEqual(answer["failed"], "k2")
        self.assertNotIn("k2", fork_template._unassigned)
        self.assertEqual(os.read(assign_r, 1), b"")   # the child, were it alive, would get EOF
        os.close(assign_r)

