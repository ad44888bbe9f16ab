"""The teacher's page at ``/class`` in Chromium, against a real ``twistd webkernel --users``.

Teacher tess signs in on the page (the notebook page's form); students alice,
bob and carl are WAMP clients (``broker.client``, WAMP-CRA) running code in
their own kernels. The tiles follow them live (by subscription), a student's
error and help request show on their tile, the teacher clears the help
request, watches a student's kernel and runs a cell in it, and a broadcast
runs in all three kernels; an observer's view is read-only. Students dora,
erin and finn are real notebook pages, each in a browser context of its own and
signed in by the page's form: their cells, an error and a help request reach
their tiles, a broadcast shows in each page as run by the teacher, a hand-out
is offered in each page, and collect gathers every student's copy. One service
and one Chromium for the module. Screenshots of the page (desktop and phone
width, three student pages) go to test-artifacts/browser/. Every wait is
bounded; no sleeps.
"""

import json
import os
import threading
import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.notebook_page import NotebookPage
from tests.service import ServiceProcess

PASSWORDS = {"dora": "dora password", "erin": "erin password", "finn": "finn password", "tess": "tess password", "olga": "olga password", "alice": "alice password",
             "bob": "bob password", "carl": "carl password"}
ROLES = {"dora": "student", "erin": "student", "finn": "student", "tess": "teacher", "olga": "observer", "alice": "student", "bob": "student",
         "carl": "student"}
STUDENTS = ("alice", "bob", "carl")  # WAMP clients
PAGE_STUDENTS = ("dora", "erin", "finn")  # real notebook pages, each in a browser context of its own
WAIT = 60_000

pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside crochet 2.1


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    """A service in multi-user mode, and each student signed in with a kernel of their own."""
    from broker.client import connect
    from broker.users import store

    base = tmp_path_factory.mktemp("lesson")
    users_file = base / "users.json"
    store.save(str(users_file), {n: store.User.create(n, ROLES[n], p) for n, p in PASSWORDS.items()})
    running = ServiceProcess("--users", str(users_file), "--unsafe-shared-account",
                             "--home-root", str(base / "homes"), "--kernel-dir", str(base / "kernels"),
                             "--notebook-dir", str(base))
    running.url = f"http://127.0.0.1:{running.port}/"
    running.homes = str(base / "homes")
    running.students = {}
    try:
        for name in STUDENTS:
            client = connect(running.ws_url, user=name, password=PASSWORDS[name], timeout=60)
            running.students[name] = (client, client.start_kernel(timeout=90))
        yield running
    finally:
        for client, kernel in running.students.values():
            client.close()
        running.stop()


def sign_in(browser, lesson, user, width=1200, height=850, path="class"):
    """A tab on /class (or another page) signed in as *user* by keyboard."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.goto(lesson.url + path)
    expect(page.locator("#signin-name")).to_be_focused(timeout=WAIT)
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[user])
    page.keyboard.press("Enter")
    expect(page.locator("#connection-status")).to_have_text("connected", timeout=WAIT)
    return context, page


def tile(page, user):
    return page.locator(f'.tile[data-user="{user}"]')


def ask(lesson, student, procedure, *args):
    client, _ = lesson.students[student]
    return client._run(client.async_client.call, procedure, *args)


def test_a_lesson(browser, lesson):
    """Tiles live, an error and a help request on the tiles, watch and run, broadcast in all three."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page = sign_in(browser, lesson, "tess")
    for name in STUDENTS:
        expect(tile(page, name)).to_have_attribute("data-signed-in", "true", timeout=WAIT)
        expect(tile(page, name).locator(".kernel-state")).to_have_text("idle", timeout=WAIT)

    # a student's error shows on the teacher's tile, live
    _, alice_kernel = lesson.students["alice"]
    alice_kernel.execute("1/0")
    expect(tile(page, "alice")).to_have_attribute("data-error", "true", timeout=WAIT)
    expect(tile(page, "alice").locator(".last-error")).to_contain_text("ZeroDivisionError")
    expect(tile(page, "alice").locator(".last-cell")).to_have_text("1/0")

    # busy for N s, while a long cell runs (then idle again)
    _, bob_kernel = lesson.students["bob"]
    running = threading.Thread(target=bob_kernel.execute, args=("import time; time.sleep(3)",))
    running.start()
    expect(tile(page, "bob").locator(".kernel-state")).to_contain_text("busy for", timeout=WAIT)
    running.join(WAIT / 1000)
    expect(tile(page, "bob").locator(".kernel-state")).to_have_text("idle", timeout=WAIT)

    # help appears, the filter finds it, the teacher clears it
    ask(lesson, "carl", "webkernel.class.help", "my plot is empty")
    expect(tile(page, "carl")).to_have_attribute("data-help", "true", timeout=WAIT)
    expect(tile(page, "carl").locator(".help-request")).to_contain_text("my plot is empty")
    page.locator("#filter-help").check()
    expect(tile(page, "alice")).to_be_hidden()
    expect(tile(page, "carl")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "class-help-filter.png"), full_page=True)
    page.locator("#filter-help").uncheck()
    page.locator("#filter-error").check()
    expect(tile(page, "carl")).to_be_hidden()
    expect(tile(page, "alice")).to_be_visible()
    page.locator("#filter-error").uncheck()
    tile(page, "carl").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#watch-title")).to_have_text("Watching carl", timeout=WAIT)
    page.locator(".clear-help").click()
    expect(tile(page, "carl")).to_have_attribute("data-help", "false", timeout=WAIT)

    # watch alice's kernel: her cells appear as they run; the teacher runs one in it
    tile(page, "alice").click()
    expect(page.locator("#watch-title")).to_have_text("Watching alice", timeout=WAIT)
    expect(page.locator(".watch-note")).to_be_visible(timeout=WAIT)
    expect(page.locator(".watch-log")).to_contain_text("ZeroDivisionError", timeout=WAIT)  # history
    alice_kernel.execute("print('hello from alice')")
    expect(page.locator(".watch-log")).to_contain_text("hello from alice", timeout=WAIT)
    page.locator(".watch-code").fill("print('teacher was here')")
    page.locator(".watch-run").click()
    expect(page.locator(".watch-log")).to_contain_text("teacher was here", timeout=WAIT)
    expect(page.locator(".watch-prompt").last).to_contain_text("run by tess")

    # broadcast a cell: it runs in all three kernels, each answers ok
    page.locator("#broadcast-code").fill("shared = 6 * 7")
    page.locator("#broadcast-run").click()
    for name in STUDENTS:
        expect(page.locator(f'#broadcast-results [data-user="{name}"]')).to_have_attribute(
            "data-status", "ok", timeout=WAIT)
        _, kernel = lesson.students[name]
        assert kernel.eval_cell("shared") == "42"
    page.screenshot(path=str(ARTIFACTS / "class-teacher.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    expect(tile(page, "alice")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "class-teacher-phone.png"), full_page=True)
    context.close()


def test_observer_watches_read_only(browser, lesson):
    """An observer sees the tiles and watches a kernel, with no way to run, interrupt or broadcast."""
    context, page = sign_in(browser, lesson, "olga")
    expect(tile(page, "alice")).to_be_visible(timeout=WAIT)
    expect(page.locator("#broadcast-run")).to_have_count(0)
    tile(page, "alice").click()
    expect(page.locator(".read-only")).to_be_visible(timeout=WAIT)
    expect(page.locator(".watch-run")).to_have_count(0)
    context.close()


def student_page(browser, lesson, user):
    """*user*'s notebook page in a browser context of its own, signed in by its form, kernel idle."""
    context, page = sign_in(browser, lesson, user, path="")
    notebook = NotebookPage(page, lesson, ARTIFACTS, f"class-{user}")
    page.remove_listener("dialog", notebook._dialog)  # this test answers the help prompt itself
    notebook.wait_for_kernel("idle", WAIT)
    return context, notebook


def write_notebook(lesson, teacher, name, source):
    home = os.path.join(lesson.homes, teacher)
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, name), "w") as f:
        json.dump({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "id": "c1", "source": source, "metadata": {},
             "outputs": [], "execution_count": None}]}, f)


def test_three_student_pages(browser, lesson):
    """Three students' own notebook pages beside the teacher's /class: live tiles, an error, help, broadcast, hand-out, collect."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    teacher, page = sign_in(browser, lesson, "tess")
    students = {name: student_page(browser, lesson, name) for name in PAGE_STUDENTS}
    for name in PAGE_STUDENTS:
        expect(tile(page, name)).to_have_attribute("data-signed-in", "true", timeout=WAIT)
        expect(tile(page, name).locator(".kernel-state")).to_have_text("idle", timeout=WAIT)

    # each student runs a cell in their page: their tile shows it, live
    for name, (_, notebook) in students.items():
        code = f"me = '{name}'"
        notebook.wait_done(notebook.run(code), WAIT)
        expect(tile(page, name).locator(".last-cell")).to_have_text(code, timeout=WAIT)

    # one student's error shows on their tile only
    _, erin = students["erin"]
    erin.wait_done(erin.run("1/0"), WAIT)
    expect(tile(page, "erin")).to_have_attribute("data-error", "true", timeout=WAIT)
    expect(tile(page, "erin").locator(".last-error")).to_contain_text("ZeroDivisionError")
    for name in ("dora", "finn"):
        expect(tile(page, name)).to_have_attribute("data-error", "false")

    # a help request from a page appears on the tile, and the teacher clears it
    _, finn = students["finn"]
    finn.page.once("dialog", lambda dialog: dialog.accept("where is my output?"))
    finn.page.locator("#ask-help").click()
    expect(tile(page, "finn")).to_have_attribute("data-help", "true", timeout=WAIT)
    expect(tile(page, "finn").locator(".help-request")).to_contain_text("where is my output?")
    tile(page, "finn").click()
    expect(page.locator("#watch-title")).to_have_text("Watching finn", timeout=WAIT)
    page.locator(".clear-help").click()
    expect(tile(page, "finn")).to_have_attribute("data-help", "false", timeout=WAIT)

    # a broadcast runs in all three pages, each marked as run by the teacher
    page.locator("#broadcast-code").fill("print('from the teacher')")
    page.locator("#broadcast-run").click()
    for name, (_, notebook) in students.items():
        expect(page.locator(f'#broadcast-results [data-user="{name}"]')).to_have_attribute(
            "data-status", "ok", timeout=WAIT)
        expect(notebook.page.get_by_text("Run by tess").last).to_be_visible(timeout=WAIT)
        expect(notebook.page.get_by_text("from the teacher").last).to_be_visible(timeout=WAIT)
    page.screenshot(path=str(ARTIFACTS / "class-three-students.png"), full_page=True)
    students["dora"][1].page.screenshot(path=str(ARTIFACTS / "class-student-broadcast.png"),
                                        full_page=True)

    # a hand-out is offered in each student's page at once; collect gathers every student's copy
    write_notebook(lesson, "tess", "week1.ipynb", "answer = None")
    page.locator("#handout-path").fill("week1.ipynb")
    page.locator("#handout-run").click()
    everyone = STUDENTS + PAGE_STUDENTS
    for name in everyone:
        expect(page.locator(f'#handout-results [data-user="{name}"]')).to_have_attribute(
            "data-status", "handed_out", timeout=WAIT)
    for name, (_, notebook) in students.items():
        notebook.page.locator(".open-handout").click()
        expect(notebook.page.get_by_text("answer = None")).to_be_visible(timeout=WAIT)
    page.locator("#collect-run").click()
    expect(page.locator("#collected")).to_contain_text(
        f"collected {len(everyone)} into collected/week1", timeout=WAIT)
    with page.expect_download(timeout=WAIT) as download:
        page.locator("#collected-zip").click()
    names = zipfile.ZipFile(download.value.path()).namelist()
    assert sorted(names) == sorted(f"{name}.ipynb" for name in everyone)
    page.screenshot(path=str(ARTIFACTS / "class-collected.png"), full_page=True)
    for context, notebook in students.values():
        notebook.check_nothing_ran()
        context.close()
    teacher.close()
