"""Fixtures: one real service for the session, one Chromium, a fresh page per test."""

import secrets

import pytest

from tests.browser.notebook_page import NotebookPage, launch_chromium
from tests.service import ROOT, ServiceProcess

ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """``twistd webkernel`` with a token, and kernel and notebook directories of its own."""
    base = tmp_path_factory.mktemp("webkernel")
    notebooks = base / "notebooks"
    notebooks.mkdir()
    if not (ROOT / "broker" / "static" / "notebook.js").exists():
        pytest.fail("the page's assets are not built: cd web && npm ci && npm run build (./run-tests does it)")
    running = ServiceProcess("--token", secrets.token_urlsafe(16), "--kernel-dir", str(base / "kernels"),
                             "--notebook-dir", str(notebooks), "--max-kernels", "40")
    running.notebook_dir = notebooks
    running.url = f"http://127.0.0.1:{running.port}/"
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture()
def notebook(browser, service, request):
    """A notebook page on a kernel of its own; the kernel is shut down afterwards."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    pages = []

    def open_page(query=""):
        page = NotebookPage(context.new_page(), service, ARTIFACTS, request.node.name, len(pages) + 1)
        page.open(query)
        pages.append(page)
        return page

    first = open_page()
    first.open_another = open_page
    yield first
    for page in pages:
        page.check_nothing_ran()
    first.shut_down_kernel()
    context.close()
