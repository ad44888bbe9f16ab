"""The notebook page against a Crossbar.io cluster: a ``--front`` serves it, the page
joins the Crossbar.io realm directly, two kernel hosts run the kernels.

Skipped, with the reason, where Crossbar.io is not installed.
"""

import re

import pytest
from playwright.sync_api import expect

from tests import crossbar
from tests.browser.conftest import ARTIFACTS
from tests.browser.notebook_page import OUTPUT, NotebookPage
from tests.service import ServiceProcess

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Crossbar.io, two kernel hosts joined to it, and a front serving the page."""
    base = tmp_path_factory.mktemp("webkernel-cb-front")
    started = []
    try:
        node = crossbar.CrossbarNode(str(base)).start()
        started.append(node)
        for name in ("host-a", "host-b"):
            started.append(crossbar.kernel_host(node, str(base / name)))
        front = ServiceProcess("--front", node.ws_url, "--realm", crossbar.REALM)
        started.append(front)
        front.url = f"http://127.0.0.1:{front.port}/"
        front.token = ""
        yield front
    finally:
        for process in reversed(started):
            process.stop()


def test_the_page_runs_a_cell_on_the_cluster(browser, cluster, request):
    """The front's page joins Crossbar.io, gets a kernel from a host and runs 2+3 to 5."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = NotebookPage(context.new_page(), cluster, ARTIFACTS, request.node.name)
        page.open()
        cell = page.run("2+3")
        page.wait_done(cell)
        expect(page.outputs(cell)).to_have_text(re.compile(r"^\s*5\s*$"), timeout=OUTPUT)
        page.screenshot("ran")
        page.check_nothing_ran()
        page.shut_down_kernel()
    finally:
        context.close()
