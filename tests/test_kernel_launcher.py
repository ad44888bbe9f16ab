"""KernelLauncher and its kernelspec handling, on a fake process reactor.

No process is started: ``FakeProcessReactor`` records ``spawnProcess`` and
hands out processes the test ends; kernelspecs come from a temporary
directory, so the tests see exactly the specs they write.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from twisted.logger import Logger
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from broker.kernel import launcher as launcher_module
from broker.kernel.errors import InvalidKernelId, KernelCommandNotFound, NoSuchKernelSpec
from broker.kernel.interfaces import IKernelLauncher
from broker.kernel.launcher import PIPE_GRACE, KernelExit, KernelLauncher
from broker.kernel.logs import CHECK_INTERVAL
from broker.kernel.testing import FakeProcessReactor

PYTHON_SPEC = {
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "env": {"KERNEL_HOME": "${HOME}/kernels", "EXTRA": "yes"},
}
OTHER_SPEC = {
    "argv": ["no-such-kernel-binary-xyz", "--conn", "{connection_file}"],
    "display_name": "Imaginary",
    "language": "imaginary",
}
KERNEL_ID = "0123456789abcdef0123456789abcdef"


class KernelLauncherTests(TestCase):
    """KernelLauncher with kernelspecs from a temporary directory and no real process."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="webkernel-test-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        specs = os.path.join(self.root, "kernels")
        for name, spec in (("python3", PYTHON_SPEC), ("imaginary", OTHER_SPEC)):
            os.makedirs(os.path.join(specs, name))
            with open(os.path.join(specs, name, "kernel.json"), "w") as f:
                json.dump(spec, f)
        self.reactor = FakeProcessReactor()
        self.kernel_dir = os.path.join(self.root, "runtime")
        self.launcher = KernelLauncher(
            self.reactor, self.kernel_dir,
            spec_manager=KernelSpecManager(kernel_dirs=[specs], ensure_native_kernel=False),
            environ={"HOME": "/home/ada", "PATH": os.environ["PATH"], "PYTHONEXECUTABLE": "/x"},
        )

    def launch(self, name="python3"):
        return self.successResultOf(self.launcher.launch(name, KERNEL_ID))

    def test_provides_the_interface(self):
        """KernelLauncher provides IKernelLauncher."""
        verifyObject(IKernelLauncher, self.launcher)

    def test_connection_file_is_private_loopback_and_signed(self):
        """The connection file is 0600 in a new 0700 directory, with loopback tcp ports and a 256-bit key."""
        kernel = self.launch()
        self.assertEqual(kernel.connection_file, os.path.join(self.kernel_dir, f"kernel-{KERNEL_ID}.json"))
        self.assertEqual(stat.S_IMODE(os.stat(kernel.connection_file).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.kernel_dir).st_mode) & 0o777, 0o700)
        with open(kernel.connection_file) as f:
            written = json.load(f)
        self.assertEqual(written, kernel.connection_info)
        self.assertEqual((written["ip"], written["transport"], written["signature_scheme"]),
                         ("127.0.0.1", "tcp", "hmac-sha256"))
        self.assertEqual(len(bytes.fromhex(written["key"])), 32)
        ports = [written[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")]
        self.assertEqual(len(set(ports)), 5)

    def test_each_kernel_gets_its_own_key(self):
        """Two kernels never share an HMAC key."""
        first = self.launch()
        second = self.successResultOf(self.launcher.launch("python3", "other"))
        self.assertNotEqual(first.connection_info["key"], second.connection_info["key"])

    def test_command_and_environment_come_from_the_spec(self):
        """argv gets the connection file and this interpreter; env is the host's plus the spec's, substituted."""
        kernel = self.launch()
        spawned = self.reactor.spawned[0]
        self.assertEqual(spawned.args[:5], [sys.executable, "-I", "-S", "-c", launcher_module.NEW_SESSION])
        self.assertEqual(spawned.args[5:], [shutil.which(sys.executable), sys.executable, "-m",
                                            "ipykernel_launcher", "-f",
                                            os.path.realpath(kernel.connection_file)])
        self.assertEqual(spawned.env["KERNEL_HOME"], "/home/ada/kernels")
        self.assertEqual(spawned.env["EXTRA"], "yes")
        self.assertNotIn("PYTHONEXECUTABLE", spawned.env)
        self.assertTrue(spawned.process.stdin_closed)
        self.assertEqual(kernel.pid, spawned.process.pid)

    def test_kernel_can_outlive_the_service(self):
        """No JPY_PARENT_PID (even inherited), a new session, and output to a 0600 log file, not pipes."""
        self.launcher.environ["JPY_PARENT_PID"] = "1234"
        kernel = self.launch()
        spawned = self.reactor.spawned[0]
        self.assertNotIn("JPY_PARENT_PID", spawned.env)
        self.assertIn("os.setsid()", spawned.args[4])
        self.assertEqual(spawned.child_fds[0], "w")
        self.assertIsInstance(spawned.child_fds[1], int)
        self.assertEqual(spawned.child_fds[1], spawned.child_fds[2])
        log = os.path.join(self.kernel_dir, f"kernel-{KERNEL_ID}.log")
        self.assertEqual(stat.S_IMODE(os.stat(log).st_mode), 0o600)
        self.assertRaises(OSError, os.fstat, spawned.child_fds[1])  # the service keeps no copy
        kernel.remove_files()
        self.assertEqual(os.listdir(self.kernel_dir), [])

    @pytest.mark.integration
    def test_new_session_wrapper_execs_the_command(self):
        """The wrapper runs the kernel's command in a new session, in the same process."""
        script = "import os, sys; print(os.getpid() == os.getsid(0), sys.argv[1:])"
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", launcher_module.NEW_SESSION, sys.executable,
             "python", "-c", script, "a b"], capture_output=True, text=True, timeout=30,
            start_new_session=False)
        self.assertEqual(result.stdout, "True ['a b']\n")

    def test_missing_kernel_command_fails_and_leaves_no_file(self):
        """A kernelspec whose executable is not on the PATH fails with KernelCommandNotFound, writing nothing."""
        self.failureResultOf(self.launcher.launch("imaginary", KERNEL_ID), KernelCommandNotFound)
        self.assertEqual(self.reactor.spawned, [])
        self.assertFalse(os.path.exists(os.path.join(self.kernel_dir, f"kernel-{KERNEL_ID}.json")))

    def test_unknown_name_and_bad_ids_are_refused(self):
        """Unknown kernelspecs and ids that are not [0-9a-z_] (path tricks, capitals) start nothing."""
        self.failureResultOf(self.launcher.launch("nope", KERNEL_ID), NoSuchKernelSpec)
        for bad in ("../x", "ABC", "", "a b", None):
            self.failureResultOf(self.launcher.launch("python3", bad), InvalidKernelId)
        self.assertEqual(self.reactor.spawned, [])

    def test_exit_code_then_ended(self):
        """A clean exit fires exited with exit code 0, then ended once the pipes are closed."""
        kernel = self.launch()
        self.reactor.spawned[0].process.exit(0)
        self.assertEqual(self.successResultOf(kernel.exited), KernelExit(exit_code=0))
        self.assertIsNone(self.successResultOf(kernel.ended))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_killed_by_signal(self):
        """Death by signal fires exited with the signal and no exit code."""
        kernel = self.launch()
        self.reactor.spawned[0].process.exit(None, signal=9)
        self.assertEqual(self.successResultOf(kernel.exited), KernelExit(exit_code=None, signal=9))
        self.assertEqual(str(KernelExit(None, 9)), "killed by signal 9")

    def test_pipes_held_open_are_closed_after_a_grace_period(self):
        """If a child of the kernel keeps its output pipes open, they are closed PIPE_GRACE s after the exit."""
        kernel = self.launch()
        process = self.reactor.spawned[0].process
        process.exit(1, pipes_closed=False)
        self.assertEqual(self.successResultOf(kernel.exited), KernelExit(exit_code=1))
        self.assertNoResult(kernel.ended)
        self.reactor.advance(PIPE_GRACE)
        self.assertTrue(process.connection_lost)

    def test_signal_names(self):
        """INT, TERM and KILL reach the process; other names are refused; a gone process reports False."""
        kernel = self.launch()
        process = self.reactor.spawned[0].process
        self.assertTrue(kernel.signal("INT"))
        self.assertTrue(kernel.signal("KILL"))
        self.assertRaises(ValueError, kernel.signal, "HUP")
        self.assertEqual(process.signals, ["INT", "KILL"])
        process.exit(None, signal=9)
        self.assertFalse(kernel.signal("TERM"))

    def test_log_is_kept_within_its_size_while_the_kernel_runs(self):
        """Past log_max_bytes the kernel's .log is rotated to .log.1; the failed-start tail reads both."""
        self.launcher.log_max_bytes = 1000
        kernel = self.launch()
        log = os.path.join(self.kernel_dir, f"kernel-{KERNEL_ID}.log")
        with open(log, "ab") as f:
            f.write(b"x" * 5000 + b"\nAddress already in use\n")
        self.reactor.advance(CHECK_INTERVAL)
        self.assertEqual(os.path.getsize(log), 0)
        self.assertEqual(os.path.getsize(log + ".1"), 1000)
        self.assertEqual(kernel.output_tail().splitlines()[-1], "Address already in use")
        kernel.remove_files()
        self.assertEqual(sorted(os.listdir(self.kernel_dir)), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_log_checks_end_with_the_process(self):
        """Once the kernel exited its log is no longer checked (nothing left on the clock)."""
        self.launch()
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.reactor.spawned[0].process.exit(0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_remove_files_is_idempotent(self):
        """remove_files() deletes the connection file and may be called again."""
        kernel = self.launch()
        kernel.remove_files()
        kernel.remove_files()
        self.assertFalse(os.path.exists(kernel.connection_file))

    def test_output_is_logged_by_line_at_debug(self):
        """stdout and stderr are logged line by line at debug level with the kernel id."""
        events = []
        self.patch(launcher_module.KernelProcessProtocol, "log", Logger(observer=events.append))
        self.launch()
        protocol = self.reactor.spawned[0].protocol
        protocol.outReceived(b"one\ntw")
        protocol.outReceived(b"o\n")
        protocol.errReceived(b"oops")
        self.reactor.spawned[0].process.exit(0)
        lines = [(e["stream"], e["line"]) for e in events if "line" in e]
        self.assertEqual(lines, [("stdout", "one"), ("stdout", "two"), ("stderr", "oops")])
        self.assertEqual({e["kernel_id"] for e in events if "line" in e}, {KERNEL_ID})
        self.assertEqual({e["log_level"].name for e in events if "line" in e}, {"debug"})

    def test_kernelspecs_in_jupyter_server_shape(self):
        """kernelspecs() lists every spec as {name, spec} with python3 the default, argv and env left out."""
        model = self.launcher.kernelspecs()
        self.assertEqual(model["default"], "python3")
        self.assertEqual(sorted(model["kernelspecs"]), ["imaginary", "python3"])
        python = model["kernelspecs"]["python3"]
        self.assertEqual(python["name"], "python3")
        self.assertEqual((python["spec"]["display_name"], python["spec"]["language"]),
                         ("Python 3 (ipykernel)", "python"))
        self.assertNotIn("argv", python["spec"])
        self.assertNotIn("env", python["spec"])
