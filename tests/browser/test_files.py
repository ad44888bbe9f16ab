"""Notebook files: open one from the notebook directory, save it, save it as, download it."""

import json

import nbformat
from playwright.sync_api import expect

from tests.browser.notebook_page import OUTPUT


def write_demo(directory):
    notebook = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print('from the file')", execution_count=3)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="from the file\n")]
    notebook.cells = [nbformat.v4.new_markdown_cell("# Demo notebook"), code]
    nbformat.write(notebook, str(directory / "demo.ipynb"))


def test_open_run_save_and_save_as(notebook, service):
    """Open lists the notebook directory; the file's cells and outputs show; Ctrl+S and Save-as write valid files."""
    write_demo(service.notebook_dir)
    notebook.button("Open").click()
    dialog = notebook.page.get_by_role("dialog")
    expect(dialog).to_contain_text("demo.ipynb")
    notebook.screenshot("open-dialog")
    dialog.get_by_role("button", name="demo.ipynb").click()
    expect(notebook.cells).to_have_count(2)
    expect(notebook.cell(0).locator(".rendered-markdown h1")).to_have_text("Demo notebook")
    expect(notebook.outputs(notebook.cell(1))).to_have_text("from the file")
    expect(notebook.cell(1).locator(".cell-prompt")).to_have_text("[3]:")
    assert "notebook=demo.ipynb" in notebook.page.url
    notebook.cell(1).locator(".cm-content").click()
    notebook.page.keyboard.press("Control+End")
    notebook.page.keyboard.insert_text("\nprint('and from the kernel')")
    notebook.page.keyboard.press("Control+Enter")
    notebook.wait_done(notebook.cell(1))
    expect(notebook.outputs(notebook.cell(1))).to_contain_text("and from the kernel")
    notebook.page.keyboard.press("Control+s")
    expect(notebook.page.locator(".message", has_text="Saved demo.ipynb")).to_be_visible(timeout=OUTPUT)
    saved = nbformat.read(str(service.notebook_dir / "demo.ipynb"), as_version=4)
    nbformat.validate(saved)
    assert saved.cells[1].source == "print('from the file')\nprint('and from the kernel')"
    assert saved.cells[1].outputs[0]["text"] == "from the file\nand from the kernel\n"
    assert saved.metadata.kernelspec.name == "python3"
    notebook.screenshot("saved")

    notebook.save_as("copy of demo")
    copy = nbformat.read(str(service.notebook_dir / "copy of demo.ipynb"), as_version=4)
    assert len(copy.cells) == 2
    expect(notebook.page.locator(".notebook-name")).to_have_text("copy of demo.ipynb")


def test_download_gives_a_valid_ipynb(notebook, tmp_path):
    """Download saves the current notebook, outputs included, as a valid .ipynb file."""
    cell = notebook.run("print('downloaded')")
    notebook.wait_done(cell)
    with notebook.page.expect_download(timeout=OUTPUT) as download:
        notebook.button("Download").click()
    assert download.value.suggested_filename == "Untitled.ipynb"
    path = tmp_path / "got.ipynb"
    download.value.save_as(path)
    got = nbformat.reads(path.read_text(), as_version=4)
    nbformat.validate(got)
    assert json.loads(path.read_text())["cells"][0]["outputs"][0]["text"] == "downloaded\n"
