"""The front's page signing in to a classroom Crossbar.io (``--front-auth ticket``).

A real Crossbar.io whose users sign in with the users file (the dynamic
authenticator and authorizer of ``--crossbar-authorizer --users``), two kernel
hosts with ``--classroom``, a notebook service with ``--notebooks-only
--classroom`` (each user's own folder), and a front serving the page. Driven by keyboard
as a person would; every wait is bounded, no sleeps. Skipped, with the
reason, where Crossbar.io is not installed.
"""

import re

import pytest
from playwright.sync_api import expect

from broker.users import store
from tests import crossbar
from tests.browser.conftest import ARTIFACTS
from tests.browser.notebook_page import KERNEL_START, OUTPUT, NotebookPage
from tests.service import ServiceProcess

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))]

#: a student of this module only: her password changes in a test
CAROL = ("carol", "carol-pass")
#: the authorizer re-reads the users file every 2 s; the page tries again 3 s after a GOODBYE
REVOKED = 30_000
#: TEST-NET-1 (RFC 5737): no router there; the page must not even try
REMOTE_PLAIN = "ws://192.0.2.1:8080/ws"


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """Crossbar.io with the users file as its authenticator, two hosts, and a --front-auth ticket front."""
    base = tmp_path_factory.mktemp("webkernel-cb-signin")
    started = []
    try:
        node = crossbar.CrossbarNode(str(base), classroom=True).start()
        started.append(node)
        users_file = crossbar.write_users_file(str(base / "users.json"))
        users = store.load(users_file)
        name, password = CAROL
        users[name] = store.User.create(name, "student", password, iterations=10)
        store.save(users_file, users)
        started.append(crossbar.classroom_authorizer(node, users_file))
        for name in ("host-a", "host-b"):
            started.append(crossbar.kernel_host(node, str(base / name), "--classroom"))
        home_root = base / "home"
        started.append(crossbar.notebook_service(node, "--classroom", "--home-root", str(home_root)))
        front = ServiceProcess("--front", node.ws_url, "--front-auth", "ticket",
                               "--realm", crossbar.REALM)
        started.append(front)
        front.url = f"http://127.0.0.1:{front.port}/"
        front.users_file = users_file
        front.home_root = home_root
        yield front
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture()
def tab(browser, request):
    """Tabs on a front's page, each in a browser context of its own (its own storage)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    contexts = []

    def open_tab(front):
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        contexts.append(context)
        page = NotebookPage(context.new_page(), front, ARTIFACTS, request.node.name, len(contexts))
        page.sockets = []
        page.page.on("websocket", lambda socket: page.sockets.append(socket.url))
        page.page.goto(front.url)
        return page

    yield open_tab
    for context in contexts:
        context.close()


def sign_in(page, name, password):
    """The name field has the keyboard: type the name, Tab, the password, Enter."""
    expect(page.page.locator("#signin-name")).to_be_focused(timeout=OUTPUT)
    page.page.keyboard.type(name)
    page.page.keyboard.press("Tab")
    page.page.keyboard.type(password)
    page.page.keyboard.press("Enter")


def stored(page):
    return page.page.evaluate("() => JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")


def form(page):
    return page.page.locator("form.signin-form")


def test_alice_runs_a_cell_and_bob_does_not_see_her_kernel(tab, classroom):
    """Alice signs in on the front's page and runs 2+3 to 5; Bob's page lists no kernel of hers; sign-out shows the form."""
    alice = tab(classroom)
    sign_in(alice, "alice", crossbar.STUDENTS["alice"])
    alice.wait_for_kernel("idle", KERNEL_START)
    expect(alice.page.locator("#signed-in-user")).to_have_text("alice (student)")
    expect(alice.page.locator("#ask-help")).to_have_count(0)  # no live classroom on Crossbar.io
    cell = alice.run("2+3")
    alice.wait_done(cell)
    expect(alice.outputs(cell)).to_have_text(re.compile(r"^\s*5\s*$"), timeout=OUTPUT)
    assert crossbar.STUDENTS["alice"] not in stored(alice)  # the password is in memory only
    alice.screenshot("ran")
    kernel = alice.kernel_id

    bob = tab(classroom)
    sign_in(bob, "bob", crossbar.STUDENTS["bob"])
    bob.wait_for_kernel("idle", KERNEL_START)
    expect(bob.page.locator("#signed-in-user")).to_have_text("bob (student)")
    assert bob.kernel_id != kernel
    options = bob.page.locator(".kernel-select option").evaluate_all("os => os.map(o => o.value)")
    assert f"kernel:{bob.kernel_id}" in options and f"kernel:{kernel}" not in options
    bob.screenshot("bob")
    bob.shut_down_kernel()

    alice.shut_down_kernel()
    alice.button("Sign out").click()
    expect(form(alice)).to_be_visible(timeout=OUTPUT)
    expect(alice.page.locator("#signin-problem")).to_have_text("You signed out.")
    alice.check_nothing_ran()
    bob.check_nothing_ran()


def test_alices_saved_notebook_is_in_her_folder_not_bobs(tab, classroom):
    """Alice saves a notebook from the front's page into her own folder; Bob's Open lists his own folder, without it."""
    alice = tab(classroom)
    sign_in(alice, "alice", crossbar.STUDENTS["alice"])
    alice.wait_for_kernel("idle", KERNEL_START)
    alice.type("'alice was here'")
    alice.save_as("alices")
    assert (classroom.home_root / "alice" / "alices.ipynb").is_file()
    alice.button("Open").click()
    listing = alice.page.get_by_role("dialog")
    expect(listing).to_contain_text("alices.ipynb")
    listing.get_by_role("button", name="Cancel").click()
    expect(listing).to_have_count(0)
    alice.shut_down_kernel()

    bob = tab(classroom)
    sign_in(bob, "bob", crossbar.STUDENTS["bob"])
    bob.wait_for_kernel("idle", KERNEL_START)
    bob.button("Open").click()
    dialog = bob.page.get_by_role("dialog")
    expect(dialog).to_contain_text("No notebooks here.", timeout=OUTPUT)
    expect(dialog).not_to_contain_text("alices.ipynb")
    bob.screenshot("bob-open")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    bob.shut_down_kernel()
    alice.check_nothing_ran()
    bob.check_nothing_ran()


def test_a_wrong_password_is_refused_with_the_message(tab, classroom):
    """A wrong password shows "Wrong name or password", empties the field and gives it the keyboard."""
    page = tab(classroom)
    sign_in(page, "alice", "not alice's password")
    problem = page.page.locator("#signin-problem")
    expect(problem).to_contain_text("Wrong name or password", timeout=OUTPUT)
    expect(problem).to_have_attribute("role", "alert")
    expect(page.page.get_by_label("Password")).to_have_value("")
    expect(page.page.get_by_label("Password")).to_be_focused()
    expect(page.page.locator(".notebook")).to_have_count(0)
    page.screenshot("refused")


def test_a_changed_user_is_signed_out_of_the_page(tab, classroom):
    """Carol's password changes while she is signed in: Crossbar.io ends her session, the page shows the form."""
    page = tab(classroom)
    sign_in(page, *CAROL)
    page.wait_for_kernel("idle", KERNEL_START)
    page.shut_down_kernel()
    users = store.load(classroom.users_file)
    users[CAROL[0]] = store.User.create(CAROL[0], "student", "carol-new-pass", iterations=10)
    store.save(classroom.users_file, users)
    expect(form(page)).to_be_visible(timeout=REVOKED)
    expect(page.page.locator("#signin-problem")).to_contain_text("refused your saved sign-in")
    page.screenshot("signed-out")


def plain_front(*allow):
    front = ServiceProcess("--front", REMOTE_PLAIN, "--front-auth", "ticket", *allow)
    front.url = f"http://127.0.0.1:{front.port}/"
    return front


@pytest.fixture(scope="module")
def remote_plain_front():
    """A front whose router is plain ws:// to another host, the operator not having allowed it."""
    front = plain_front()
    yield front
    front.stop()


@pytest.fixture(scope="module")
def allowed_plain_front():
    """The same front, the operator having allowed it (--front-allow-plain-ws)."""
    front = plain_front("--front-allow-plain-ws")
    yield front
    front.stop()


def test_no_password_goes_over_plain_ws_to_another_host(tab, remote_plain_front):
    """Over ws:// to a host that is not loopback the page says why it will not sign in, and sends nothing."""
    assert any("will not sign in" in line for line in remote_plain_front.lines)
    page = tab(remote_plain_front)
    problem = page.page.locator("#signin-problem")
    expect(problem).to_contain_text("will not send your password", timeout=OUTPUT)
    expect(page.page.get_by_role("button", name="Sign in")).to_be_disabled()
    page.page.get_by_label("Password").fill("alice-pass")
    page.page.get_by_label("Password").press("Enter")
    expect(problem).to_contain_text("will not send your password")
    assert page.sockets == []
    page.screenshot("in-clear")


def test_the_operator_may_allow_plain_ws(tab, allowed_plain_front):
    """With --front-allow-plain-ws the form does sign in over ws:// to another host (no router there: it tries)."""
    assert any("--front-allow-plain-ws: the page sends" in line for line in allowed_plain_front.lines)
    page = tab(allowed_plain_front)
    expect(page.page.get_by_role("button", name="Sign in")).to_be_enabled(timeout=OUTPUT)
    with page.page.expect_websocket(timeout=OUTPUT) as socket:
        sign_in(page, "alice", "alice-pass")
    assert socket.value.url == REMOTE_PLAIN
