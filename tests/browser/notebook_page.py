"""The notebook page as a person sees it: type into cells, press keys, read outputs.

Every wait is bounded (Playwright's expect and wait_for with timeouts); no sleeps.
"""

import re

from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
KERNEL_START = 60_000
OUTPUT = 30_000


def launch_chromium(playwright):
    """Debian's Chromium, headless; Playwright downloads no browser."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class NotebookPage:
    """One browser tab on the notebook page."""

    def __init__(self, page, service, artifacts, test_name, number=1):
        self.page = page
        self.number = number
        self.service = service
        self.artifacts = artifacts
        self.test_name = re.sub(r"[^\w.-]+", "_", test_name)
        self.shots = 0
        self.dialogs = []
        self.errors = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    # -- navigation -----------------------------------------------------------------

    def open(self, query=""):
        """Open the URL the service logged (with the token), plus *query*; wait for an idle kernel."""
        url = f"{self.service.url}?token={self.service.token}{query}"
        self.page.goto(url)
        self.wait_for_kernel("idle", KERNEL_START)

    def wait_for_kernel(self, state, timeout=OUTPUT):
        expect(self.page.locator("#kernel-status")).to_have_attribute("data-state", state, timeout=timeout)

    @property
    def kernel_id(self):
        return re.search(r"kernel=([0-9a-f]{32})", self.page.url).group(1)

    # -- cells ----------------------------------------------------------------------

    @property
    def cells(self):
        return self.page.locator(".notebook > .cell")

    def cell(self, index):
        return self.cells.nth(index)

    @property
    def active(self):
        return self.page.locator(".cell.active")

    def type(self, code):
        """Type *code* into the active cell's editor (as one paste-like input)."""
        self.active.locator(".cm-content").click()
        self.page.keyboard.insert_text(code)

    def run(self, code, key="Shift+Enter"):
        """Type *code* into the active cell and run it; the cell's locator."""
        index = self.active_index()
        self.type(code)
        self.page.keyboard.press(key)
        return self.cell(index)

    def active_index(self):
        return self.page.evaluate(
            "() => [...document.querySelectorAll('.notebook > .cell')].findIndex(c => c.classList.contains('active'))")

    def wait_done(self, cell, timeout=OUTPUT):
        """Wait until *cell* has run: its prompt shows an execution count."""
        expect(cell.locator(".cell-prompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=timeout)

    def outputs(self, cell):
        return cell.locator(".output-area")

    def save_as(self, name):
        """Save the notebook as *name* (the name field, Enter) and wait for "Saved NAME.ipynb"."""
        self.page.locator(".notebook-name").click()
        field = self.page.get_by_label("notebook path")
        field.fill(name)
        field.press("Enter")
        expect(self.page.locator(".message", has_text=f"Saved {name}.ipynb")).to_be_visible(
            timeout=OUTPUT)

    def button(self, name):
        return self.page.get_by_role("button", name=name, exact=True)

    # -- evidence ---------------------------------------------------------------------

    def screenshot(self, what, full_page=True):
        self.shots += 1
        page = f"-page{self.number}" if self.number > 1 else ""
        path = self.artifacts / f"{self.test_name}{page}-{self.shots:02d}-{what}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def check_nothing_ran(self):
        """No dialog opened and no script from output ran in the page."""
        assert self.dialogs == [], self.dialogs
        assert self.page.evaluate("() => window.__pwned") is None
        assert self.errors == [], self.errors

    def shut_down_kernel(self):
        if "kernel=" not in self.page.url or self.page.is_closed():
            return
        self.button("Shut down").click()
        expect(self.page.locator("#kernel-status")).to_have_attribute("data-state", "none", timeout=OUTPUT)
