"""Rich output as a person sees it: images, HTML, markdown and math, JSON, in-place updates, long output."""

from playwright.sync_api import expect

from tests.browser.notebook_page import OUTPUT

MAKE_PNG = """
import struct, zlib
from IPython.display import Image, SVG, display
def png(width, height, rgb):
    rows = b''.join(b'\\x00' + bytes(rgb) * width for _ in range(height))
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b'')
display(Image(png(40, 20, (30, 120, 200))))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="30"><circle cx="15" cy="15" r="12" fill="orange"/></svg>'))
"""


def test_png_and_svg_images_show(notebook):
    """A PNG from IPython.display.Image and an SVG are decoded and shown as images."""
    cell = notebook.run(MAKE_PNG.strip())
    notebook.wait_done(cell)
    png = notebook.outputs(cell).locator("img[data-mime='image/png']")
    svg = notebook.outputs(cell).locator("img[data-mime='image/svg+xml']")
    expect(png).to_be_visible()
    expect(svg).to_be_visible()
    assert png.evaluate("img => img.complete && img.naturalWidth") == 40
    assert svg.evaluate("img => img.complete && img.naturalWidth") == 30
    notebook.screenshot("images")


def test_html_markdown_latex_and_json(notebook):
    """HTML tables, markdown with $math$, LaTeX and JSON are each rendered as such."""
    cell = notebook.run(
        "from IPython.display import HTML, Markdown, Latex, JSON, display\n"
        "display(HTML('<table><tr><th>n</th><th>n²</th></tr><tr><td>3</td><td>9</td></tr></table>'))\n"
        "display(Markdown('## Results\\n\\nEuler: $e^{i\\\\pi} + 1 = 0$ and `$not math$`'))\n"
        "display(Latex(r'$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$'))\n"
        "display(JSON({'primes': [2, 3, 5]}))")
    notebook.wait_done(cell)
    area = notebook.outputs(cell)
    expect(area.locator(".output-html table td").last).to_have_text("9")
    expect(area.locator(".output-markdown h2")).to_have_text("Results")
    expect(area.locator(".output-markdown .katex")).to_have_count(1)
    expect(area.locator(".output-markdown code")).to_have_text("$not math$")
    expect(area.locator(".output-latex .katex-display")).to_have_count(1)
    expect(area.locator(".output-json")).to_contain_text('"primes"')
    notebook.screenshot("rich")


def test_update_display_and_clear_output_wait(notebook):
    """update_display_data changes an output in place; clear_output(wait=True) redraws a progress line."""
    cell = notebook.run(
        "import time\nfrom IPython.display import display, clear_output\n"
        "handle = display('step 0', display_id=True)\n"
        "for i in range(1, 4):\n    time.sleep(0.05)\n    handle.update(f'step {i}')\n"
        "for i in range(5):\n    clear_output(wait=True)\n    print(f'progress {i * 25}%')\n    time.sleep(0.05)")
    notebook.wait_done(cell)
    area = notebook.outputs(cell)
    expect(area).to_have_text("progress 100%")
    second = notebook.run("handle.update('updated from another cell')")
    notebook.wait_done(second)
    expect(area).to_have_text("progress 100%")  # that display was cleared from this cell
    third = notebook.run("handle2 = display('version 1', display_id='shared')")
    notebook.wait_done(third)
    fourth = notebook.run("handle2.update('version 2')")
    notebook.wait_done(fourth)
    expect(notebook.outputs(third)).to_have_text("'version 2'")
    expect(notebook.outputs(fourth)).to_be_empty()


def test_carriage_returns_redraw_the_line(notebook):
    """A progress bar written with '\\r' ends as its last state, on one line."""
    cell = notebook.run("import time\nfor i in range(0, 101, 20):\n"
                        "    print(f'\\rloading {i:3d}%', end='', flush=True)\n    time.sleep(0.03)\nprint(' done')")
    notebook.wait_done(cell)
    expect(notebook.outputs(cell)).to_have_text("loading 100% done")


def test_markdown_cell_renders_with_math(notebook):
    """A markdown cell renders on Shift+Enter, math included; double-click edits it again."""
    notebook.page.get_by_label("cell type").select_option("markdown")
    notebook.type("# Notes\n\nThe area is $\\pi r^2$.\n\n$$\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$$")
    notebook.page.keyboard.press("Shift+Enter")
    rendered = notebook.cell(0).locator(".rendered-markdown")
    expect(rendered.locator("h1")).to_have_text("Notes")
    expect(rendered.locator(".katex")).to_have_count(2)
    expect(rendered.locator(".katex-display")).to_have_count(1)
    notebook.screenshot("markdown")
    rendered.dblclick()
    expect(notebook.cell(0).locator(".cm-editor")).to_be_visible()


def test_100000_lines_do_not_freeze_the_page(notebook):
    """100,000 printed lines arrive without freezing the page; the middle is folded behind 'Show all'."""
    notebook.page.evaluate("""() => {
        window.__longestFrame = 0;
        let last = performance.now();
        const tick = (now) => {
            window.__longestFrame = Math.max(window.__longestFrame, now - last);
            last = now;
            if (!window.__stopFrames) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
    }""")
    cell = notebook.run("for i in range(100_000):\n    print('line', i)")
    notebook.wait_done(cell, timeout=120_000)
    stream = notebook.outputs(cell).locator(".output-stream")
    expect(stream).to_contain_text("line 99999", timeout=OUTPUT)
    longest = notebook.page.evaluate("() => { window.__stopFrames = true; return window.__longestFrame; }")
    assert longest < 2000, f"the page froze for {longest:.0f} ms"
    gap = stream.locator(".text-gap")
    expect(gap).to_contain_text("99,700 more lines")
    assert "line 50000\n" not in stream.inner_text()
    gap.scroll_into_view_if_needed()
    notebook.screenshot("long-output", full_page=False)
    gap.get_by_role("button", name="Show all").click()
    expect(stream).to_contain_text("line 50000", timeout=OUTPUT)
    expect(gap).to_have_count(0)
