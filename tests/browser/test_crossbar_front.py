"""The notebook page against a Crossbar.io cluster: a ``--front`` serves it, the page
joins the Crossbar.io realm directly, two kernel hosts run the kernels and a
``--notebooks-only`` service lists, opens and saves the notebooks.

Skipped, with the reason, where Crossbar.io is not installed.
"""

import re

import nbformat
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
    """Crossbar.io, two kernel hosts and a notebook service joined to it, and a front serving the page."""
    base = tmp_path_factory.mktemp("webkernel-cb-front")
    started = []
    try:
        node = crossbar.CrossbarNode(str(base)).start()
        started.append(node)
        for name in ("host-a", "host-b"):
            started.append(crossbar.kernel_host(node, str(base / name)))
        notebook_dir = base / "notebooks"
        notebook_dir.mkdir()
        started.append(crossbar.notebook_service(node, "--notebook-dir", str(notebook_dir)))
        front = ServiceProcess("--front", node.ws_url, "--realm", crossbar.REALM)
        started.append(front)
        front.url = f"http://127.0.0.1:{front.port}/"
        front.token = ""
        front.notebook_dir = notebook_dir
        yield front
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture()
def front_tab(browser, cluster, request):
    """``open_tab()``: a new tab on the front's page, opened (its kernel idle); the tabs share
    one browser context, closed after the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tabs = []

    def open_tab():
        tabs.append(NotebookPage(context.new_page(), cluster, ARTIFACTS, request.node.name,
                                 number=len(tabs) + 1))
        tabs[-1].open()
        return tabs[-1]
    yield open_tab
    context.close()


def test_the_page_runs_a_cell_on_the_cluster(front_tab):
    """The front's page joins Crossbar.io, gets a kernel from a host and runs 2+3 to 5."""
    page = front_tab()
    cell = page.run("2+3")
    page.wait_done(cell)
    expect(page.outputs(cell)).to_have_text(re.compile(r"^\s*5\s*$"), timeout=OUTPUT)
    page.screenshot("ran")
    page.check_nothing_ran()
    page.shut_down_kernel()


def test_the_page_saves_a_notebook_and_opens_it_again(front_tab, cluster):
    """Save-as from the front's page writes the notebook through Crossbar.io; a new tab's Open lists it and shows its cell and output."""
    page = front_tab()
    cell = page.run("print('kept on the cluster')")
    page.wait_done(cell)
    page.save_as("on the cluster")
    saved = nbformat.read(str(cluster.notebook_dir / "on the cluster.ipynb"), as_version=4)
    assert saved.cells[0].source == "print('kept on the cluster')"
    page.shut_down_kernel()

    again = front_tab()
    again.button("Open").click()
    dialog = again.page.get_by_role("dialog")
    expect(dialog).to_contain_text("on the cluster.ipynb")
    dialog.get_by_role("button", name="on the cluster.ipynb").click()
    expect(again.cells).to_have_count(len(saved.cells))  # Shift+Enter added an empty cell
    expect(again.outputs(again.cell(0))).to_have_text("kept on the cluster")
    again.screenshot("opened")
    again.check_nothing_ran()
    again.shut_down_kernel()
