"""tests/conftest.py fails a unit test that leaves a timer on the global reactor (so no test depends on
the order) or starts a process (so it is marked integration)."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from twisted.trial.unittest import SynchronousTestCase

LEAVES_A_TIMER = '''
import pytest
from twisted.internet import reactor

def test_unit():
    reactor.callLater(60, print)

@pytest.mark.integration
def test_integration():
    reactor.callLater(60, print)

def test_clean():
    reactor.callLater(60, print).cancel()

def test_starts_a_process():
    import subprocess, sys
    subprocess.run([sys.executable, "-c", "pass"], check=True)

@pytest.mark.integration
def test_integration_starts_a_process():
    import subprocess, sys
    subprocess.run([sys.executable, "-c", "pass"], check=True)
'''


@pytest.mark.integration
class GlobalReactorGuardTests(SynchronousTestCase):
    """The guards, run by a pytest of their own on a file of five tests."""

    def test_a_unit_test_leaving_a_timer_fails(self):
        """The unit tests leaving a timer or starting a process error at teardown; the others pass."""
        directory = Path(tempfile.mkdtemp(prefix="webkernel-guard-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        shutil.copy(Path(__file__).parent / "conftest.py", directory / "conftest.py")
        (directory / "test_timers.py").write_text(LEAVES_A_TIMER)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
             "-o", "markers=integration: real", "-rA", str(directory)],
            cwd=directory, capture_output=True, text=True, timeout=120)
        self.assertIn("ERROR test_timers.py::test_unit", result.stdout)
        self.assertIn("left timers on the global reactor", result.stdout)
        self.assertIn("PASSED test_timers.py::test_integration", result.stdout)
        self.assertIn("PASSED test_timers.py::test_clean", result.stdout)
        self.assertIn("ERROR test_timers.py::test_starts_a_process", result.stdout)
        self.assertIn("a unit test started a process (_execute_child)", result.stdout)
        self.assertIn("PASSED test_timers.py::test_integration_starts_a_process", result.stdout)
        self.assertIn("5 passed, 2 errors", result.stdout)
