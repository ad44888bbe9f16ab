"""The page's own JavaScript units (web/test/*.test.js: the output pipeline), run with Node's test runner."""

import shutil
import subprocess

import pytest

from tests.service import ROOT

WEB = ROOT / "web"


def test_output_pipeline_units_pass():
    """Out-of-order, repeated, coalesced, superseded and gap-marked output is applied once, in order."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found on PATH: the page's unit tests need Node.js >= 20 (./run-tests installs it)")
    if not (WEB / "node_modules").is_dir():
        pytest.fail("web/node_modules is missing: cd web && npm ci (./run-tests does it)")
    result = subprocess.run([node, "--test", "test/"], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
