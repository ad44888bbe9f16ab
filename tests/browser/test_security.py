"""Untrusted output runs nothing and cannot reach the token; the page is sent with a strict policy."""

import urllib.request

from playwright.sync_api import expect

HOSTILE = r'''
from IPython.display import HTML, Markdown, SVG, display
display(HTML('<b>bold</b><img src=x onerror="window.__pwned=1;alert(1)">'
             '<script>window.__pwned=2;alert(2)</script>'
             '<a id="js" href="javascript:window.__pwned=3">click me</a>'
             '<iframe srcdoc="<script>parent.__pwned=4</script>"></iframe>'
             '<style>body { display: none }</style>'
             '<img src=x onerror="fetch(\'/steal?\' + sessionStorage.getItem(\'webkernel.token\'))">'))
display(Markdown('<img src=y onerror="window.__pwned=5"> **markdown** <script>window.__pwned=6</script>'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="window.__pwned=7">'
            '<script>window.__pwned=8</script><rect width="20" height="20"/></svg>'))
print('<script>window.__pwned=9</script>')
'''


def test_hostile_output_runs_nothing(notebook, service):
    """HTML, markdown, SVG and text trying to run script: nothing runs, no dialog opens, the token stays hidden."""
    cell = notebook.run(HOSTILE.strip())
    notebook.wait_done(cell)
    area = notebook.outputs(cell)
    expect(area.locator(".output-html b")).to_have_text("bold")
    expect(area.locator(".output-markdown strong")).to_have_text("markdown")
    expect(area.locator(".output-stream")).to_have_text("<script>window.__pwned=9</script>")
    expect(notebook.page.locator("body")).to_be_visible()
    assert area.locator("script, iframe, style, [onerror], [onload]").count() == 0
    area.locator("#user-content-js").click()  # ids get a prefix: they clobber nothing
    assert notebook.page.evaluate("() => window.__pwned") is None
    assert notebook.dialogs == []
    assert service.token not in notebook.page.url
    assert service.token not in notebook.page.content()
    notebook.screenshot("hostile-output")


def test_page_is_served_with_a_strict_policy(service):
    """The page forbids inline script and other origins' scripts; the assets are served, no listing."""
    with urllib.request.urlopen(service.url) as response:
        policy = response.headers["Content-Security-Policy"]
        body = response.read().decode()
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert "unsafe-eval" not in policy
    assert '<meta name="webkernel-realm" content="webkernel">' in body
    assert '<meta name="webkernel-auth" content="ticket">' in body
    with urllib.request.urlopen(service.url + "static/notebook.js") as response:
        assert response.headers["Content-Type"].startswith("text/javascript")
    try:
        urllib.request.urlopen(service.url + "static/")
        raise AssertionError("the static directory was listed")
    except urllib.error.HTTPError as error:
        assert error.code == 404


def test_the_page_connects_only_to_its_own_origin(notebook, service):
    """The page's own WebSocket works under connect-src 'self'; one to another origin (even this service by another name) is blocked."""
    cell = notebook.run("6 * 7")
    notebook.wait_done(cell)
    outcome = notebook.page.evaluate("""url => new Promise(resolve => {
        document.addEventListener("securitypolicyviolation",
                                  e => resolve([e.violatedDirective, e.blockedURI]), {once: true});
        try {
            const socket = new WebSocket(url, "wamp.2.json");
            socket.onopen = () => resolve(["opened"]);      // what the old ws: allowed
            socket.onerror = () => resolve(["refused by the service"]);
        } catch (e) { resolve(["thrown", e.name]); }
    })""", f"ws://localhost:{service.port}/ws")
    assert outcome[0] == "connect-src" or outcome == ["thrown", "SecurityError"], outcome


def test_a_wrong_token_asks_for_the_right_one(browser, service):
    """With a wrong token the page says the service refused it and asks for the token."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{service.url}?token=not-the-token")
        expect(page.locator(".token-refused")).to_contain_text("refused", timeout=20_000)
        expect(page.get_by_label("token")).to_be_visible()
        assert "not-the-token" not in page.url
    finally:
        context.close()
