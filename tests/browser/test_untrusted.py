"""Untrusted notebooks and outputs stay inside their cells: no overlay, no DOM clobbering, no math blow-up."""

import nbformat
from playwright.sync_api import expect

from tests.browser.notebook_page import OUTPUT

OVERLAY = ('<div id="cover" style="position:fixed;inset:0;top:0;left:0;width:100vw;height:100vh;'
           'z-index:2147483647;background:#fff">Nothing to see here</div>'
           '<div class="overlay">borrowed page class</div>'
           '<div style="position:sticky;top:0;z-index:99;transform:translateY(-300px)">sticky</div>'
           '<div style="position:absolute;top:0;left:0;width:5000px;height:5000px;z-index:99;'
           'color:rgb(200, 0, 0);text-align:right">absolute</div>')

# the element at the centre of each cell, each toolbar button and the top bar must be that thing itself
WHO_IS_ON_TOP = """() => {
  const hits = [];
  const probe = (el, what) => {
    el.scrollIntoView({ block: 'center' });
    const box = el.getBoundingClientRect();
    const x = box.left + Math.min(box.width / 2, 20), y = box.top + box.height / 2;
    const top = document.elementFromPoint(x, y);
    hits.push({ what, ok: Boolean(top && (top === el || el.contains(top))), top: top && top.outerHTML.slice(0, 80) });
  };
  document.querySelectorAll('.notebook > .cell .cell-prompt').forEach((el, i) => probe(el, `cell ${i}`));
  document.querySelectorAll('.toolbar button, .topbar').forEach((el) => probe(el, el.textContent.trim()));
  return hits.filter((hit) => !hit.ok);
}"""


def open_file(notebook, service, name, cells):
    """Write a notebook of *cells* to the notebook directory and open it in the page."""
    document = nbformat.v4.new_notebook()
    document.cells = cells
    nbformat.write(document, str(service.notebook_dir / name))
    notebook.button("Open").click()
    notebook.page.get_by_role("dialog").get_by_role("button", name=name).click()
    expect(notebook.cells).to_have_count(len(cells))


def test_a_markdown_overlay_cannot_cover_the_cells_run_all_will_run(notebook, service):
    """A notebook whose markdown holds fixed/sticky/absolute boxes: every cell and button is still what is on top."""
    open_file(notebook, service, "overlay.ipynb", [
        nbformat.v4.new_markdown_cell("# Harmless\n\n" + OVERLAY),
        nbformat.v4.new_code_cell("hidden = 'this cell must be visible'"),
        nbformat.v4.new_code_cell("print(hidden)"),
    ])
    markdown = notebook.cell(0).locator(".rendered-markdown")
    expect(markdown).to_contain_text("Nothing to see here")
    assert notebook.page.evaluate(WHO_IS_ON_TOP) == []
    cover = markdown.locator("#user-content-cover")
    assert cover.evaluate("el => getComputedStyle(el).position") == "static"
    assert cover.evaluate("el => getComputedStyle(el).zIndex") == "auto"
    assert markdown.locator(".overlay").count() == 0
    kept = markdown.get_by_text("absolute")
    assert kept.evaluate("el => [getComputedStyle(el).color, getComputedStyle(el).textAlign]") == [
        "rgb(200, 0, 0)", "right"]
    notebook.screenshot("markdown-overlay")


def test_an_output_overlay_stays_inside_its_output(notebook):
    """HTML output with a full-page fixed box, and a fixed box put there past the sanitizer, stay inside the output."""
    cell = notebook.run("from IPython.display import HTML, display\n"
                        f"display(HTML({OVERLAY!r}))\n"
                        "display(HTML('<p id=\"late\">second output</p>'))")
    notebook.wait_done(cell)
    notebook.run("'a cell below'")
    notebook.wait_done(notebook.cell(1))
    area = notebook.outputs(cell)
    expect(area).to_contain_text("Nothing to see here")
    assert notebook.page.evaluate(WHO_IS_ON_TOP) == []
    # the containment holds even for a box the sanitizer did not clean (defence in depth)
    area.locator(".output-html").first.evaluate(
        "el => { const d = document.createElement('div');"
        " d.style.cssText = 'position:fixed;inset:0;z-index:2147483647;background:red';"
        " el.append(d); }")
    assert notebook.page.evaluate(WHO_IS_ON_TOP) == []
    notebook.screenshot("output-overlay")


CLOBBER = ('<img name="getElementById"><img name="cookie"><img name="body" id="body">'
           '<a id="clobbered" name="clobbered">a</a><form name="forms"><input name="x"></form>'
           '<img id="sessionStorage"><div id="autobahn"></div><img name="querySelector">'
           '<a href="#clobbered" class="jump">jump</a>')


def test_dom_clobbering_does_not_shadow_globals(notebook):
    """Named and id'd elements in output and markdown shadow no document or window property; the page still works."""
    cell = notebook.run("from IPython.display import HTML, Markdown, display\n"
                        f"display(HTML({CLOBBER!r}))\n"
                        f"display(Markdown({CLOBBER!r}))")
    notebook.wait_done(cell)
    expect(notebook.outputs(cell).locator("a")).to_have_count(4)
    jump = notebook.outputs(cell).locator("a.jump").first
    assert jump.get_attribute("href") == "#user-content-clobbered"  # in-output links follow the prefix
    assert jump.get_attribute("target") is None
    globals_ = notebook.page.evaluate("""() => ({
        getElementById: typeof document.getElementById,
        querySelector: typeof document.querySelector,
        cookie: typeof document.cookie,
        body: document.body.tagName,
        forms: document.forms instanceof HTMLCollection,
        clobbered: [typeof window.clobbered, typeof document.clobbered],
        sessionStorage: window.sessionStorage instanceof Storage,
        ids: [...document.querySelectorAll('.output-area [id], .output-area [name]')]
               .map((el) => el.id || el.getAttribute('name')),
    })""")
    assert globals_.pop("ids") and all(
        name.startswith("user-content-") for name in notebook.page.evaluate(
            "() => [...document.querySelectorAll('.output-area [id], .output-area [name]')]"
            ".flatMap((el) => [el.id, el.getAttribute('name')].filter(Boolean))"))
    assert globals_ == {"getElementById": "function", "querySelector": "function", "cookie": "string",
                        "body": "BODY", "forms": True, "clobbered": ["undefined", "undefined"],
                        "sessionStorage": True}
    after = notebook.run("6 * 7")
    notebook.wait_done(after)
    expect(notebook.outputs(after)).to_have_text("42", timeout=OUTPUT)


def test_huge_math_does_not_blow_up(notebook):
    """\\rule{100000em}{100000em} and an exponential macro render small, in a markdown cell and as output."""
    bomb = "\\def\\a{x}" + "".join(f"\\def\\{c}{{\\{chr(ord(c) - 1)}\\{chr(ord(c) - 1)}}}"
                                   for c in "bcdefghijklmnopqrstuvwxy") + "\\y"
    open_file(notebook, notebook.service, "math.ipynb", [
        nbformat.v4.new_markdown_cell("$$\\rule{100000em}{100000em}$$\n\n$" + bomb + "$"),
        nbformat.v4.new_code_cell("1"),
    ])
    markdown = notebook.cell(0).locator(".rendered-markdown")
    expect(markdown.locator(".katex-display")).to_have_count(1)
    height = markdown.evaluate("el => el.getBoundingClientRect().height")
    width = markdown.evaluate("el => el.scrollWidth")
    assert height < 900 and width < 2000, (height, width)
    assert notebook.page.evaluate(WHO_IS_ON_TOP) == []
    notebook.screenshot("huge-math")
