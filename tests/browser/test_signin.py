"""Multi-user mode in the page: the sign-in form, WAMP-CRA, staying signed in, signing out, one's own notebooks.

A real ``twistd webkernel --users`` of its own (students alice, bob and carol),
driven by keyboard as a person would. Every wait is bounded; no sleeps.
"""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.notebook_page import KERNEL_START, OUTPUT, NotebookPage
from tests.service import ServiceProcess

PASSWORDS = {"alice": "alice's password", "bob": "bob's password", "carol": "carol's password"}
KEPT = "webkernel.signin"
#: the service re-reads the users file every 2 s; the page tries again 3 s after a GOODBYE
REVOKED = 30_000


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """``twistd webkernel --users`` with three students (kernels as the service's account)."""
    from broker.users import store

    base = tmp_path_factory.mktemp("classroom")
    users_file = base / "users.json"
    store.save(str(users_file), {name: store.User.create(name, "student", password)
                                 for name, password in PASSWORDS.items()})
    (base / "notebooks").mkdir()
    running = ServiceProcess("--users", str(users_file), "--unsafe-shared-account",
                             "--home-root", str(base / "homes"), "--kernel-dir", str(base / "kernels"),
                             "--notebook-dir", str(base / "notebooks"))
    running.url = f"http://127.0.0.1:{running.port}/"
    running.users_file = str(users_file)
    running.homes = base / "homes"
    yield running
    running.stop()


@pytest.fixture()
def tab(browser, classroom, request):
    """A fresh browser context (its own sessionStorage) with one tab on the page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    contexts = []

    def open_tab(kept=None):
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        if kept is not None:  # as if this tab had signed in before (once: not again on reloads)
            context.add_init_script(
                f"if (!sessionStorage.getItem('test.kept')) {{ sessionStorage.setItem('test.kept', '1');"
                f" sessionStorage.setItem({json.dumps(KEPT)}, {json.dumps(kept)}); }}")
        contexts.append(context)
        page = NotebookPage(context.new_page(), classroom, ARTIFACTS, request.node.name, len(contexts))
        page.page.goto(classroom.url)
        return page

    yield open_tab
    for context in contexts:
        context.close()


def form(page):
    return page.page.locator("form.signin-form")


def sign_in_by_keyboard(page, name, password):
    """The name field has the keyboard: type the name, Tab, the password, Enter."""
    expect(page.page.locator("#signin-name")).to_be_focused()
    page.page.keyboard.type(name)
    page.page.keyboard.press("Tab")
    expect(page.page.locator("#signin-password")).to_be_focused()
    page.page.keyboard.type(password)
    page.page.keyboard.press("Enter")


def kept(page):
    return page.page.evaluate(f"() => sessionStorage.getItem({json.dumps(KEPT)})")


def test_form_appears_in_multi_user_mode(tab):
    """The page shows the sign-in form, with the name field focused, and nothing of a notebook."""
    page = tab()
    expect(form(page)).to_be_visible()
    expect(page.page.get_by_role("heading", name="Sign in to webkernel")).to_be_visible()
    expect(page.page.get_by_label("Name")).to_be_focused()
    expect(page.page.get_by_label("Password")).to_have_attribute("type", "password")
    expect(page.page.locator(".notebook")).to_have_count(0)
    page.screenshot("signin-form")


def test_wrong_password_says_so(tab):
    """A wrong password shows "Wrong name or password", clears the field and gives it the keyboard."""
    page = tab()
    sign_in_by_keyboard(page, "bob", "not bob's password")
    problem = page.page.locator("#signin-problem")
    expect(problem).to_be_visible(timeout=OUTPUT)
    expect(problem).to_contain_text("Wrong name or password")
    expect(problem).to_have_attribute("role", "alert")
    expect(page.page.get_by_label("Password")).to_have_value("")
    expect(page.page.get_by_label("Password")).to_be_focused()
    assert kept(page) is None
    page.screenshot("wrong-password")


def test_sign_in_run_reload_sign_out(tab):
    """A student signs in, runs 2+3, stays signed in across a reload, and signs out to the form."""
    page = tab()
    sign_in_by_keyboard(page, "alice", PASSWORDS["alice"])
    page.wait_for_kernel("idle", KERNEL_START)
    expect(page.page.locator("#signed-in-user")).to_have_text("alice (student)")
    cell = page.run("2 + 3")
    page.wait_done(cell)
    expect(page.outputs(cell).locator(".output-execute_result")).to_have_text("5")
    stored = page.page.evaluate("() => JSON.stringify(sessionStorage)")
    assert PASSWORDS["alice"] not in stored and "password" not in stored
    assert set(json.loads(kept(page))) == {"user", "salt", "iterations", "keylen", "key"}
    kernel = page.kernel_id

    page.page.reload()
    page.wait_for_kernel("idle", KERNEL_START)
    expect(form(page)).to_have_count(0)
    expect(page.page.locator("#signed-in-user")).to_have_text("alice (student)")
    assert page.kernel_id == kernel
    page.screenshot("signed-in")

    page.button("Sign out").click()
    expect(form(page)).to_be_visible(timeout=OUTPUT)
    expect(page.page.locator("#signin-problem")).to_have_text("You signed out.")
    assert kept(page) is None
    assert "kernel=" not in page.page.url
    assert page.errors == []


def test_password_change_revokes_the_kept_sign_in(tab, classroom):
    """After webkernel-users passwd the open tab is shown the form, and the old kept key signs no one in."""
    from broker.users import command

    page = tab()
    sign_in_by_keyboard(page, "carol", PASSWORDS["carol"])
    page.wait_for_kernel("idle", KERNEL_START)
    before = kept(page)

    command.run([classroom.users_file, "passwd", "carol", "--password", "carol's new password"])
    expect(form(page)).to_be_visible(timeout=REVOKED)
    expect(page.page.locator("#signin-problem")).to_contain_text("no longer valid")
    assert kept(page) is None

    old = tab(kept=before)  # a tab that kept the key from before the change
    expect(form(old)).to_be_visible(timeout=OUTPUT)
    expect(old.page.locator("#signin-problem")).to_contain_text("no longer valid")
    assert kept(old) is None

    sign_in_by_keyboard(old, "carol", "carol's new password")
    old.wait_for_kernel("idle", KERNEL_START)
    expect(old.page.locator("#signed-in-user")).to_have_text("carol (student)")


def test_student_saves_and_opens_only_their_own_notebooks(tab, classroom):
    """bob's Save-as writes into his own folder; his Open dialog lists his notebooks, not alice's."""
    import nbformat

    alice_home = classroom.homes / "alice"
    alice_home.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), str(alice_home / "alice_only.ipynb"))
    page = tab()
    sign_in_by_keyboard(page, "bob", PASSWORDS["bob"])
    page.wait_for_kernel("idle", KERNEL_START)
    page.save_as("bobs work")
    assert (classroom.homes / "bob" / "bobs work.ipynb").is_file()
    page.button("Open").click()
    dialog = page.page.get_by_role("dialog")
    expect(dialog).to_contain_text("bobs work.ipynb")
    expect(dialog).not_to_contain_text("alice_only.ipynb")
    page.screenshot("own-notebooks")


def test_a_kept_key_the_service_refuses_shows_the_form(tab, classroom):
    """A kept sign-in with the user's salt but a wrong key is refused by the service: forgotten, and the form says so."""
    from broker.users import store

    alice = store.load(classroom.users_file)["alice"]
    forged = json.dumps({"user": "alice", "salt": alice.salt, "iterations": alice.iterations,
                         "keylen": alice.keylen, "key": "bm90IGFsaWNlJ3Mga2V5"})
    page = tab(kept=forged)
    expect(form(page)).to_be_visible(timeout=OUTPUT)
    expect(page.page.locator("#signin-problem")).to_contain_text("refused your saved sign-in")
    assert kept(page) is None
