"""Running code as a person does: keys, prompts, input(), interrupt, restart, completion."""

import re

from playwright.sync_api import expect

from tests.browser.notebook_page import OUTPUT


def test_first_cell_has_focus_and_shift_enter_runs_and_moves_on(notebook):
    """On load the first cell has the keyboard; Shift+Enter runs it, shows output, moves to a new cell."""
    assert "token=" not in notebook.page.url
    focused = notebook.page.evaluate("() => document.activeElement.closest('.cell') !== null")
    assert focused
    cell = notebook.run("print('hello, notebook')\n6 * 7")
    notebook.wait_done(cell)
    expect(notebook.outputs(cell)).to_contain_text("hello, notebook")
    expect(notebook.outputs(cell).locator(".output-execute_result")).to_have_text("42")
    expect(cell.locator(".cell-prompt")).to_have_text("[1]:")
    expect(notebook.cells).to_have_count(2)
    expect(notebook.cell(1)).to_have_class(re.compile(r"\bactive\b"))
    assert notebook.page.evaluate("() => document.activeElement.closest('.cell.active') !== null")
    notebook.screenshot("ran")


def test_ctrl_enter_runs_in_place(notebook):
    """Ctrl+Enter runs the cell and stays on it; no new cell appears."""
    cell = notebook.run("x = 5\nx + 1", key="Control+Enter")
    notebook.wait_done(cell)
    expect(notebook.outputs(cell)).to_contain_text("6")
    expect(notebook.cells).to_have_count(1)
    expect(notebook.cell(0)).to_have_class(re.compile(r"\bactive\b"))


def test_error_shows_coloured_traceback(notebook):
    """An exception shows its traceback with ANSI colours as colours, not escape codes."""
    cell = notebook.run("def inner():\n    return 1 / 0\n\ninner()")
    notebook.wait_done(cell)
    error = notebook.outputs(cell).locator(".output-error")
    expect(error).to_contain_text("ZeroDivisionError")
    expect(error).to_contain_text("inner()")
    assert error.locator("span[class*='ansi-']").count() > 0
    assert "\x1b[" not in error.inner_text()
    notebook.screenshot("traceback")


def test_input_and_getpass_are_answered_inline(notebook):
    """input() shows a prompt to type into; getpass() masks what is typed."""
    cell = notebook.run("name = input('Your name: ')\nprint('hello', name)\n"
                        "import getpass\nsecret = getpass.getpass('Password: ')\nprint(len(secret), 'characters')")
    field = cell.locator(".stdin-field")
    expect(field).to_have_attribute("type", "text", timeout=OUTPUT)
    expect(cell.locator(".stdin-prompt")).to_have_text("Your name: ")
    field.fill("Ada")
    field.press("Enter")
    expect(notebook.outputs(cell)).to_contain_text("hello Ada", timeout=OUTPUT)
    password = cell.locator(".stdin-field[type=password]")
    expect(password).to_be_visible(timeout=OUTPUT)
    password.fill("hunter22")
    notebook.screenshot("password-prompt")
    password.press("Enter")
    notebook.wait_done(cell)
    expect(notebook.outputs(cell)).to_contain_text("8 characters")
    assert "hunter22" not in notebook.outputs(cell).inner_text()


def test_interrupt_stops_an_endless_loop(notebook):
    """Interrupt ends `while True: pass` with KeyboardInterrupt; the kernel is idle again."""
    cell = notebook.run("while True:\n    pass")
    expect(cell).to_have_attribute("data-state", "running", timeout=OUTPUT)
    notebook.wait_for_kernel("busy")
    notebook.button("Interrupt").click()
    expect(notebook.outputs(cell)).to_contain_text("KeyboardInterrupt", timeout=OUTPUT)
    notebook.wait_for_kernel("idle")
    notebook.screenshot("interrupted")
    after = notebook.run("print('still alive')")
    notebook.wait_done(after)
    expect(notebook.outputs(after)).to_contain_text("still alive")


def test_restart_forgets_state(notebook):
    """After Restart the kernel is fresh: a name defined before is gone."""
    cell = notebook.run("answer = 42")
    notebook.wait_done(cell)
    notebook.button("Restart").click()
    expect(notebook.page.locator(".message", has_text="restarted")).to_be_visible(timeout=60_000)
    notebook.wait_for_kernel("idle")
    after = notebook.run("answer")
    notebook.wait_done(after)
    expect(notebook.outputs(after)).to_contain_text("NameError")
    expect(after.locator(".cell-prompt")).to_have_text("[1]:")


def test_tab_completes_and_shift_tab_inspects(notebook):
    """Tab completes from the kernel (at once when there is one match); Shift+Tab shows the docstring."""
    setup = notebook.run("import collections\ndef greet(name):\n    'Say hello to someone by name.'\n    return 'hello ' + name")
    notebook.wait_done(setup)
    notebook.type("collections.OrderedD")
    notebook.page.keyboard.press("Tab")
    expect(notebook.active.locator(".cm-content")).to_have_text("collections.OrderedDict", timeout=OUTPUT)
    notebook.page.keyboard.insert_text("\ncollections.")
    notebook.page.keyboard.press("Tab")
    menu = notebook.page.locator(".cm-tooltip-autocomplete")
    expect(menu).to_be_visible(timeout=OUTPUT)
    expect(menu).to_contain_text("defaultdict")
    notebook.screenshot("completions")
    notebook.page.keyboard.press("Escape")
    notebook.page.keyboard.insert_text("\ngreet")
    notebook.page.keyboard.press("Shift+Tab")
    inspection = notebook.active.locator(".inspection")
    expect(inspection).to_contain_text("Say hello to someone by name.", timeout=OUTPUT)
    notebook.screenshot("inspection")
    notebook.page.keyboard.press("Escape")
    expect(inspection).to_be_hidden()


def test_cells_are_added_moved_deleted_run_all_and_cleared(notebook):
    """The toolbar edits the list of cells; Run all runs them in order; Clear outputs empties them."""
    notebook.type("print('first')")
    notebook.button("+ Code").click()
    notebook.type("print('second')")
    notebook.button("+ Code").click()
    notebook.type("print('third')")
    expect(notebook.cells).to_have_count(3)
    notebook.button("Move up").click()
    expect(notebook.cell(1).locator(".cm-content")).to_have_text("print('third')")
    notebook.button("Move down").click()
    expect(notebook.cell(2).locator(".cm-content")).to_have_text("print('third')")
    notebook.button("Delete").click()
    expect(notebook.cells).to_have_count(2)
    notebook.button("Run all").click()
    notebook.wait_done(notebook.cell(1))
    expect(notebook.outputs(notebook.cell(0))).to_have_text("first")
    expect(notebook.outputs(notebook.cell(1))).to_have_text("second")
    expect(notebook.cell(0).locator(".cell-prompt")).to_have_text("[1]:")
    expect(notebook.cell(1).locator(".cell-prompt")).to_have_text("[2]:")
    notebook.screenshot("run-all")
    notebook.button("Clear outputs").click()
    expect(notebook.page.locator(".output-area:not(:empty)")).to_have_count(0)


def test_run_all_stops_at_an_error(notebook):
    """Cells after one that raised are not run, and say so."""
    notebook.type("print('before')")
    notebook.button("+ Code").click()
    notebook.type("raise ValueError('stop here')")
    notebook.button("+ Code").click()
    notebook.type("print('after')")
    notebook.button("Run all").click()
    expect(notebook.outputs(notebook.cell(1))).to_contain_text("ValueError", timeout=OUTPUT)
    expect(notebook.cell(2).locator(".cell-note")).to_contain_text("Not run", timeout=OUTPUT)
    assert "after" not in notebook.outputs(notebook.cell(2)).inner_text()
