"""Notebooks on a Crossbar.io realm: ``twistd webkernel --router … --notebooks-only``.

Each test starts Crossbar.io (tests/crossbar.py, which gives the notebook
service its role ``webkernel_notebooks``) and notebook services joined to it,
and lists, opens and saves notebooks as a client of Crossbar.io.
Skipped, with the reason, where Crossbar.io is not installed.
"""

import os
import shutil
import tempfile

import nbformat
import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from broker import errors
from broker.notebook import uris
from tests import crossbar
from tests.twisted_wamp import joined, leave

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(crossbar.missing() is not None, reason=str(crossbar.missing()))]

CALL = 60  # seconds: a bound on each call from the test (a loaded machine)


def a_notebook(source):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    return notebook


def names(listing):
    return sorted(entry["name"] for entry in listing["entries"])


class CrossbarNotebooksTestCase(TestCase):
    """Crossbar.io and notebook services joined to it."""

    timeout = 240

    def start_node(self, **options):
        self.work = tempfile.mkdtemp(prefix="webkernel-cb-notebooks-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.node = crossbar.CrossbarNode(self.work, **options).start()
        self.addCleanup(self.node.stop)

    def start_notebooks(self, *args):
        service = crossbar.notebook_service(self.node, *args)
        self.addCleanup(service.stop)
        return service

    @defer.inlineCallbacks
    def client(self, **credentials):
        session = yield joined(self.node, realm=crossbar.REALM, **credentials)
        self.addCleanup(lambda: leave(session) if session.is_attached() else None)
        return session

    def call(self, session, uri, *args, **kwargs):
        return session.call(uri, *args, **kwargs).addTimeout(CALL, reactor)


class SharedFolderTests(CrossbarNotebooksTestCase):
    """Notebook services over one folder share the procedures, and come back after a router restart."""

    @defer.inlineCallbacks
    def test_list_get_save_through_crossbar_and_after_a_restart(self):
        """Two services register the procedures together; a client saves, lists and opens through Crossbar.io, before and after Crossbar.io restarts."""
        self.start_node()
        folder = os.path.join(self.work, "notebooks")
        os.mkdir(folder)
        services = [self.start_notebooks("--notebook-dir", folder) for _ in range(2)]
        client = yield self.client()
        saved = yield self.call(client, uris.NOTEBOOKS_SAVE, "first.ipynb", a_notebook("1 + 1"))
        self.assertEqual(saved["name"], "first.ipynb")
        self.assertEqual(names((yield self.call(client, uris.NOTEBOOKS_LIST))), ["first.ipynb"])
        for _ in services:  # both registered (shared): round robin gives each one of these
            got = yield self.call(client, uris.NOTEBOOKS_GET, "first.ipynb")
            self.assertEqual(got["content"]["cells"][0]["source"], "1 + 1")
        with self.assertRaises(ApplicationError) as refused:
            yield self.call(client, uris.NOTEBOOKS_GET, "../outside.ipynb")
        self.assertEqual(refused.exception.error, errors.PATH_OUTSIDE_NOTEBOOK_DIR)
        yield leave(client)

        self.node.stop()
        self.node.start()
        for service in services:
            service.wait_for("notebook procedures registered on realm", count=2, timeout=CALL)
        client = yield self.client()
        yield self.call(client, uris.NOTEBOOKS_SAVE, "second.ipynb", a_notebook("2 + 2"))
        self.assertEqual(names((yield self.call(client, uris.NOTEBOOKS_LIST))),
                         ["first.ipynb", "second.ipynb"])
        self.assertTrue(os.path.isfile(os.path.join(folder, "second.ipynb")))


class ClassroomFolderTests(CrossbarNotebooksTestCase):
    """With --classroom each user signed in to Crossbar.io has their own folder."""

    @defer.inlineCallbacks
    def test_alices_notebooks_are_not_bobs(self):
        """Alice's save lands in her folder; Bob lists his own (empty) folder and cannot open hers; Tess, a teacher, sees both."""
        self.start_node(classroom=True)
        users = crossbar.write_users_file(os.path.join(self.work, "users.json"))
        authorizer = crossbar.classroom_authorizer(self.node, users)
        self.addCleanup(authorizer.stop)
        home_root = os.path.join(self.work, "home")
        self.start_notebooks("--classroom", "--home-root", home_root)
        alice = yield self.client(ticket="alice-pass", authid="alice")
        bob = yield self.client(ticket="bob-pass", authid="bob")
        tess = yield self.client(ticket="tess-pass", authid="tess")

        yield self.call(alice, uris.NOTEBOOKS_SAVE, "mine.ipynb", a_notebook("'alice'"))
        self.assertTrue(os.path.isfile(os.path.join(home_root, "alice", "mine.ipynb")))
        self.assertEqual(names((yield self.call(alice, uris.NOTEBOOKS_LIST))), ["mine.ipynb"])
        self.assertEqual(names((yield self.call(bob, uris.NOTEBOOKS_LIST))), [])
        with self.assertRaises(ApplicationError) as refused:
            yield self.call(bob, uris.NOTEBOOKS_GET, "mine.ipynb")
        self.assertEqual(refused.exception.error, errors.NO_SUCH_PATH)
        got = yield self.call(tess, uris.NOTEBOOKS_GET, "alice/mine.ipynb")
        self.assertEqual(got["content"]["cells"][0]["source"], "'alice'")
