"""JupyterLab (PyPI) with ``--gateway-url`` in Chromium, its kernels on a real ``twistd webkernel``.

A person opens a notebook in JupyterLab, runs ``2+3`` and sees ``5``, then
runs a cell that prints and then waits on ``input()``: the printed lines
are on the page while the cell still runs (streamed), and the answer typed
into JupyterLab's input box reaches the kernel. Screenshots go to
``test-artifacts/browser/``. Every wait is bounded; no sleeps.
"""

import contextlib
import secrets
import shutil

import nbformat
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.jupyter_process import JupyterServerProcess
from tests.service import ServiceProcess

pytestmark = pytest.mark.integration
LOAD = 120_000
OUTPUT = 60_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """webkernel with a token, and ``jupyter lab`` using it as its gateway."""
    base = tmp_path_factory.mktemp("gateway-lab")
    service = ServiceProcess("--token", secrets.token_urlsafe(16), "--kernel-dir",
                             str(base / "kernels"), "--max-kernels", "4")
    try:
        lab = JupyterServerProcess(f"http://127.0.0.1:{service.port}", service.token,
                                   app="jupyterlab", timeout=120)
    except Exception:
        service.stop()
        raise
    lab.service = service
    yield lab
    lab.stop()
    service.stop()
    shutil.rmtree(lab.home, ignore_errors=True)


def notebook_file(lab, name):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("")]
    nbformat.write(nb, str(lab.path(name)))


def run_cell(page, code):
    """Type *code* into the active cell and run it (Shift+Enter)."""
    editor = page.locator(".jp-Notebook .jp-Cell.jp-mod-active .cm-content")
    editor.click()
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


@contextlib.contextmanager
def opened_notebook(lab, browser, name):
    """A tab on a new notebook NAME.ipynb, alone in JupyterLab (``?reset``: the workspace
    forgets the other tests' tabs), its kernel idle. If the body fails, a screenshot and
    both services' logs go to ARTIFACTS as ``jupyterlab-NAME-failed.*``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    notebook_file(lab, f"{name}.ipynb")
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    try:
        page.goto(lab.url + f"lab/tree/{name}.ipynb?reset", timeout=LOAD)
        expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=LOAD)
        # the kernel (webkernel's, through the gateway) is connected and idle; before it is,
        # a cell run with Shift+Enter runs on no kernel at all
        expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=LOAD)
        yield page
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"jupyterlab-{name}-failed.png"))
        (ARTIFACTS / f"jupyterlab-{name}-failed.log").write_text(
            lab.log() + "\n---- webkernel ----\n" + lab.service.log())
        raise
    finally:
        context.close()


def test_run_cells_in_jupyterlab(lab, browser):
    """2+3 shows 5; printed lines show while the cell waits on input(); the typed answer is used."""
    with opened_notebook(lab, browser, "gateway") as page:
        run_cell(page, "2+3")
        first = page.locator(".jp-Notebook .jp-Cell").nth(0)
        expect(first.locator(".jp-OutputArea-output")).to_have_text("5", timeout=OUTPUT)
        run_cell(page, "for i in range(3): print('line', i, flush=True)\nname = input('name? ')\nprint('hello', name)")
        second = page.locator(".jp-Notebook .jp-Cell").nth(1)
        box = second.locator(".jp-Stdin-input")
        expect(box).to_be_visible(timeout=OUTPUT)
        expect(second.locator(".jp-OutputArea")).to_contain_text("line 2", timeout=OUTPUT)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-streaming.png"))
        box.fill("webkernel")
        box.press("Enter")
        expect(second.locator(".jp-OutputArea")).to_contain_text("hello webkernel", timeout=OUTPUT)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"))


def test_widgets_work_both_ways_in_jupyterlab(lab, browser):
    """An ipywidgets slider shows; the kernel moving it moves it on the page; a key on the page moves it in the kernel."""
    with opened_notebook(lab, browser, "widgets") as page:
        run_cell(page, "import ipywidgets as w\nslider = w.IntSlider(value=3, max=10)\nslider")
        first = page.locator(".jp-Notebook .jp-Cell").nth(0)
        readout = first.locator(".widget-readout")
        expect(readout).to_have_text("3", timeout=OUTPUT)       # comm_open from the kernel
        run_cell(page, "slider.value = 7")
        expect(readout).to_have_text("7", timeout=OUTPUT)       # comm_msg from the kernel
        handle = first.locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")                               # comm_msg to the kernel
        expect(readout).to_have_text("8", timeout=OUTPUT)
        # the slider's cell is the active one now: type into the empty third cell itself
        third = page.locator(".jp-Notebook .jp-Cell").nth(2)
        third.locator(".cm-content").click()
        page.keyboard.type("print('kernel sees', slider.value)")
        page.keyboard.press("Shift+Enter")
        expect(third.locator(".jp-OutputArea")).to_contain_text("kernel sees 8", timeout=OUTPUT)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-widgets.png"))


def test_interact_shows_its_output_in_its_widget(lab, browser):
    """interact's Output widget captures what the function prints, at the start and when the slider moves."""
    with opened_notebook(lab, browser, "interact") as page:
        run_cell(page, "from ipywidgets import interact\n"
                       "interact(lambda x: print('twice', x * 2), x=5);")
        first = page.locator(".jp-Notebook .jp-Cell").nth(0)
        captured = first.locator(".widget-output")   # the Output widget, not the cell's own area
        expect(captured).to_contain_text("twice 10", timeout=OUTPUT)
        handle = first.locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")
        expect(captured).to_contain_text("twice 12", timeout=OUTPUT)
        expect(captured).not_to_contain_text("twice 10")
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-interact.png"))
