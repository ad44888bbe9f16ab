"""Notebook folders on a real ``twistd webkernel --users``: student bob cannot reach alice's notebooks by any path trick.

Users sign in with WAMP-CRA over real WebSockets (the helpers of
tests/test_classroom_service.py). The service runs as root with real
per-user OS accounts (prefix ``wknb-``) when it can, so each folder is
``--home-root/<user>``, 0700, owned by the user's account, as in a classroom.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest
from twisted.internet import defer

from broker import errors
from broker.kernel.isolation_checks import cannot_switch_accounts
from broker.notebook import uris
from broker.users import store
from tests.service import ServiceProcess
from tests.test_classroom_service import PASSWORDS, ROLES, ServiceTestCase

REFUSED = (errors.PATH_OUTSIDE_NOTEBOOK_DIR, errors.NO_SUCH_PATH, errors.NOT_A_NOTEBOOK)


def a_notebook(text):
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "source": text,
                       "outputs": [], "execution_count": None}]}


@pytest.mark.integration
class NotebookFoldersServiceTests(ServiceTestCase):
    """Each student's notebooks in their own folder, enforced by the real service."""

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="webkernel-folders-")
        os.chmod(cls.directory, 0o755)  # the home root must be reachable by the users' accounts
        cls.users_file = os.path.join(cls.directory, "users.json")
        store.save(cls.users_file, {n: store.User.create(n, ROLES[n], p)
                                    for n, p in PASSWORDS.items() if n in ("alice", "bob", "tess", "olga")})
        cls.homes = os.path.join(cls.directory, "homes")
        isolation = ["--user-prefix", "wknb-"] if not cannot_switch_accounts() else ["--unsafe-shared-account"]
        cls.service = ServiceProcess("--users", cls.users_file, "--no-kernels", "--home-root", cls.homes,
                                     *isolation)

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()
        shutil.rmtree(cls.directory, ignore_errors=True)
        for user in PASSWORDS:  # the OS accounts the service made for its users
            subprocess.run(["userdel", "wknb-" + user], capture_output=True)
            subprocess.run(["groupdel", "wknb-" + user], capture_output=True)

    @defer.inlineCallbacks
    def test_bob_cannot_reach_alices_notebooks(self):
        """alice saves in her folder; bob's get, list and save by .., absolute paths and symlinks are all refused."""
        alice = yield self.sign_in("alice")
        bob = yield self.sign_in("bob")
        saved = yield alice.call(uris.NOTEBOOKS_SAVE, path="a.ipynb", content=a_notebook("alice's work"))
        self.assertEqual(saved["path"], "a.ipynb")
        alice_file = os.path.join(self.homes, "alice", "a.ipynb")
        yield bob.call(uris.NOTEBOOKS_SAVE, path="b.ipynb", content=a_notebook("bob's work"))
        bob_home = os.path.join(self.homes, "bob")
        os.symlink(os.path.join(self.homes, "alice"), os.path.join(bob_home, "to_alice"))
        os.symlink(alice_file, os.path.join(bob_home, "alice.ipynb"))

        listing = yield bob.call(uris.NOTEBOOKS_LIST)
        self.assertEqual([e["name"] for e in listing["entries"]], ["b.ipynb"])
        for trick in ("../alice/a.ipynb", f"{self.homes}/alice/a.ipynb", "x/../../alice/a.ipynb",
                      "to_alice/a.ipynb", "alice.ipynb", "alice/a.ipynb"):
            yield self.refused(lambda: bob.call(uris.NOTEBOOKS_GET, path=trick), REFUSED)
            yield self.refused(lambda: bob.call(uris.NOTEBOOKS_SAVE, path=trick,
                                                content=a_notebook("bob was here")), REFUSED)
        for trick in ("..", "../alice", self.homes, "to_alice"):
            yield self.refused(lambda: bob.call(uris.NOTEBOOKS_LIST, path=trick), REFUSED)
        with open(alice_file) as f:
            self.assertIn("alice's work", f.read())

    @defer.inlineCallbacks
    def test_folders_and_files_belong_to_their_users(self):
        """With per-user accounts, a student's folder is 0700 and theirs, and so is the notebook saved in it."""
        if cannot_switch_accounts():
            raise self.skipTest("the service cannot switch accounts here")
        alice = yield self.sign_in("alice")
        yield alice.call(uris.NOTEBOOKS_SAVE, path="owned.ipynb", content=a_notebook("x"))
        home = os.stat(os.path.join(self.homes, "alice"))
        saved = os.stat(os.path.join(self.homes, "alice", "owned.ipynb"))
        self.assertEqual(home.st_mode & 0o777, 0o700)
        self.assertNotEqual(home.st_uid, 0)
        self.assertEqual((saved.st_uid, saved.st_gid), (home.st_uid, home.st_gid))

    @defer.inlineCallbacks
    def test_teacher_all_observer_reads(self):
        """tess lists every folder and opens alice's notebook by alice/…; olga opens it and cannot save."""
        alice = yield self.sign_in("alice")
        yield alice.call(uris.NOTEBOOKS_SAVE, path="t.ipynb", content=a_notebook("for the teacher"))
        listing = yield self.teacher.call(uris.NOTEBOOKS_LIST)
        self.assertIn("alice", [e["name"] for e in listing["entries"]])
        got = yield self.teacher.call(uris.NOTEBOOKS_GET, path="alice/t.ipynb")
        self.assertIn("for the teacher", json.dumps(got["content"]))
        olga = yield self.sign_in("olga")
        yield olga.call(uris.NOTEBOOKS_GET, path="alice/t.ipynb")
        yield self.refused(lambda: olga.call(
            uris.NOTEBOOKS_SAVE, path="alice/t.ipynb", content=a_notebook("olga")))
