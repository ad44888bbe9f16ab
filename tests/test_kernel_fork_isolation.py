"""OS isolation of forked kernels: test_kernel_isolation's attacks, on ``--kernel-factory fork``.

The same classroom (students alice and bob as test accounts, run as root) with
kernels forked from a root template: each child runs the spawn launcher's own
``confine`` (limits, then the switch to its owner's account) before any kernel
code, so every attack of test_kernel_isolation must fail the same way. Plus:
the kernels are really forked, and the template is out of a student's reach.
"""

import ast
import os
import re

import pytest

from tests.test_kernel_isolation import (  # noqa: F401 - the attacks, collected here again
    PASSWORDS,
    PREFIX,
    attempt,
    check_kept_kernel_found_again,
    open_classroom,
    test_a_memory_hog_gets_memory_error_and_hurts_no_one,
    test_a_restarted_kernel_is_confined_again,
    test_a_student_cannot_read_anothers_files,
    test_a_student_cannot_signal_anothers_kernel,
    test_kernels_run_as_their_users_accounts,
    test_kernels_talk_over_ipc_in_the_home,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def classroom():
    """The multi-user service of test_kernel_isolation, forking its kernels from a template."""
    # the attacks take os as imported
    yield from open_classroom("--kernel-factory", "fork", first_cell="import os; 1")


def template_pid(classroom):
    return int(re.findall(r"fork template ready, pid (\d+)", classroom["service"].log())[-1])


def test_kernels_are_forked_from_the_template(classroom):
    """Each student's kernel is a child of the root template, not spawned."""
    for user, proxy in classroom["proxies"].items():
        assert proxy.eval_cell("import os; os.getppid()") == str(template_pid(classroom)), user
    assert "spawned, not forked" not in classroom["service"].log()


def test_a_student_cannot_reach_the_template(classroom):
    """From alice's kernel, signalling the template (root) or reading its memory is PermissionError."""
    alice = classroom["proxies"]["alice"]
    pid = template_pid(classroom)
    assert attempt(alice, f"import os, signal; os.kill({pid}, signal.SIGKILL)") == "PermissionError"
    assert attempt(alice, f"open('/proc/{pid}/mem', 'rb').read(1)") == "PermissionError"
    assert attempt(alice, f"open('/proc/{pid}/environ').read()") == "PermissionError"


def test_kept_forked_kernels_are_found_again(classroom):
    """--keep-kernels: a confined forked kernel outlives its service (and template); the next re-attaches it."""
    check_kept_kernel_found_again("--kernel-factory", "fork")


CACHES_SEEN = "import jedi, parso.cache; (jedi.settings.cache_directory, str(parso.cache._default_cache_path))"


def test_completion_caches_are_in_the_owners_home(classroom):
    """jedi's and parso's cache folders, set when the root template imported them, are the student's own."""
    home = os.path.join(classroom["home_root"], "alice")
    seen = classroom["proxies"]["alice"].eval_cell(CACHES_SEEN)
    assert ast.literal_eval(seen) == (os.path.join(home, ".cache", "jedi"),
                                      os.path.join(home, ".cache", "parso"))
