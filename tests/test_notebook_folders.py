"""Multi-user mode's notebook folders: each student only their own, by any path trick; teachers all; observers read.

Fast tests on real temporary directories and the in-memory router with the
classroom authorizer; tests/test_notebook_folders_service.py does the same
against a real ``twistd webkernel --users``.
"""

import json
import os
import shutil
import stat
import tempfile

import nbformat
from autobahn.wamp import message, types
from twisted.trial.unittest import SynchronousTestCase

from broker import errors
from broker.auth import NOTEBOOKS_ROLE, Principal
from broker.classroom.authorizer import ClassroomAuthorizer
from broker.classroom.notebooks import UserFolders
from broker.classroom.owners import KernelOwners
from broker.notebook import store, uris
from broker.notebook.confined import ConfinedFolder
from broker.notebook.session import NotebookSession
from broker.testing import MemoryRouter

#: the path tricks a student may try to reach bob's notebook from alice's folder
TRICKS = ["../bob/secret.ipynb", "/HOMES/bob/secret.ipynb", "x/../../bob/secret.ipynb",
          "./../bob/secret.ipynb", "..", "link_to_bob/secret.ipynb", "bob_file.ipynb",
          "nested/link/secret.ipynb", "HOMES/bob/secret.ipynb"]


def a_notebook(text="1 + 1"):
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])))


class Homes:
    """A home root with alice's and bob's folders; bob's holds secret.ipynb; alice's holds symlinks to it."""

    def __init__(self, test):
        self.root = tempfile.mkdtemp()
        test.addCleanup(shutil.rmtree, self.root)
        for user in ("alice", "bob"):
            os.mkdir(self.home(user), 0o700)
        self.secret = os.path.join(self.home("bob"), "secret.ipynb")
        with open(self.secret, "w") as f:
            json.dump(a_notebook("bob's secret"), f)
        alice = self.home("alice")
        with open(os.path.join(alice, "mine.ipynb"), "w") as f:
            json.dump(a_notebook("alice's"), f)
        os.symlink(self.home("bob"), os.path.join(alice, "link_to_bob"))
        os.symlink(self.secret, os.path.join(alice, "bob_file.ipynb"))
        os.mkdir(os.path.join(alice, "nested"))
        os.symlink(self.home("bob"), os.path.join(alice, "nested", "link"))
        os.mkdir(os.path.join(alice, "HOMES"))  # a folder named like an absolute path's start

    def home(self, user):
        return os.path.join(self.root, user)

    def tricks(self):
        return [t.replace("/HOMES", self.root) for t in TRICKS]

    def secret_unchanged(self, test):
        with open(self.secret) as f:
            test.assertIn("bob's secret", f.read())


class ConfinedFolderTests(SynchronousTestCase):
    """A folder walked without following links: nothing outside it is read, listed or written."""

    def setUp(self):
        self.homes = Homes(self)
        self.folder = ConfinedFolder(self.homes.home("alice"))

    def test_list_get_save_inside(self):
        """Its own notebooks list, open and save as in the shared directory."""
        listing = self.folder.list("")
        self.assertEqual([(e["name"], e["type"]) for e in listing["entries"]],
                         [("HOMES", "directory"), ("nested", "directory"), ("mine.ipynb", "notebook")])
        got = self.folder.get("mine.ipynb")
        self.assertEqual(got["name"], "mine.ipynb")
        saved = self.folder.save("nested/copy.ipynb", got["content"])
        self.assertEqual(saved["path"], "nested/copy.ipynb")
        self.assertEqual(self.folder.get("nested/copy.ipynb")["content"], got["content"])

    def test_no_trick_reads_or_writes_another_folder(self):
        """Every path trick (.., absolute, symlinked file or directory) is refused for get, list and save."""
        refusals = (store.PathOutsideNotebookDir, store.NoSuchPath, store.NotANotebook)
        for trick in self.homes.tricks():
            self.assertRaises(refusals, self.folder.get, trick)
            self.assertRaises(refusals, self.folder.save, trick, a_notebook("overwritten"))
            directory = trick.rsplit("/", 1)[0] if "/" in trick else trick
            if directory != "HOMES" and not directory.endswith(".ipynb"):
                self.assertRaises(refusals, self.folder.list, directory)
        self.homes.secret_unchanged(self)

    def test_symlinks_are_refused_by_name(self):
        """A path through a symlink says so (path_outside_notebook_dir), even one pointing inside."""
        os.symlink("nested", os.path.join(self.homes.home("alice"), "inside"))
        for path in ("link_to_bob/secret.ipynb", "bob_file.ipynb", "inside/x.ipynb"):
            self.assertRaises(store.PathOutsideNotebookDir, self.folder.get, path)
        self.assertRaises(store.PathOutsideNotebookDir, self.folder.save, "bob_file.ipynb", a_notebook())
        self.assertTrue(os.path.islink(os.path.join(self.homes.home("alice"), "bob_file.ipynb")))

    def test_listing_leaves_symlinks_out(self):
        """Symlinks, to files or directories, do not appear in a listing."""
        names = [e["name"] for e in self.folder.list("")["entries"]]
        self.assertNotIn("link_to_bob", names)
        self.assertNotIn("bob_file.ipynb", names)
        self.assertEqual(self.folder.list("nested")["entries"], [])

    def test_a_directory_swapped_for_a_symlink_is_not_followed(self):
        """A directory replaced by a symlink (as a race would leave it) is refused, not followed."""
        alice = self.homes.home("alice")
        os.mkdir(os.path.join(alice, "work"))
        self.folder.save("work/a.ipynb", a_notebook())
        shutil.rmtree(os.path.join(alice, "work"))
        os.symlink(self.homes.home("bob"), os.path.join(alice, "work"))
        self.assertRaises(store.PathOutsideNotebookDir, self.folder.save, "work/secret.ipynb", a_notebook())
        self.assertRaises(store.PathOutsideNotebookDir, self.folder.get, "work/secret.ipynb")
        self.homes.secret_unchanged(self)

    def test_saved_file_belongs_to_the_folder_owner(self):
        """Run as root, a saved notebook is owned by the folder's owner (so their kernel can change it), mode 0644."""
        if os.geteuid() != 0:
            self.skipTest("needs root to give a file away")
        os.chown(self.homes.home("alice"), 54321, 54321)
        self.folder.save("given.ipynb", a_notebook())
        info = os.stat(os.path.join(self.homes.home("alice"), "given.ipynb"))
        self.assertEqual((info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)), (54321, 54321, 0o644))
        self.assertEqual([n for n in os.listdir(self.homes.home("alice")) if n.endswith(".tmp")], [])


STUDENT = Principal("alice", "student", "wampcra")
TEACHER = Principal("tess", "teacher", "wampcra")
OBSERVER = Principal("olga", "observer", "wampcra")


class UserFoldersSessionTests(SynchronousTestCase):
    """The notebook procedures through the router with the classroom authorizer: the caller's identity picks the folder."""

    def setUp(self):
        self.homes = Homes(self)
        self.memory = MemoryRouter(authorizer=ClassroomAuthorizer(KernelOwners()))
        self.folders = UserFolders(self.homes.root)
        session = NotebookSession(types.ComponentConfig(realm="realm1"), folders=self.folders)
        self.memory.attach(session, Principal("notebooks", NOTEBOOKS_ROLE, "local"))
        self.memory.clock.advance(0)

    def call(self, principal, procedure, **kwargs):
        client = self.memory.joined(principal)
        client.send(message.Call(client.request_id(), procedure, kwargs=kwargs))
        for _ in range(3):
            self.memory.clock.advance(0)
        return client.take()[-1]

    def result(self, principal, procedure, **kwargs):
        answer = self.call(principal, procedure, **kwargs)
        self.assertIsInstance(answer, message.Result, getattr(answer, "args", answer))
        return answer.args[0]

    def test_student_sees_only_their_own_folder(self):
        """alice lists and opens her own notebooks by paths relative to her folder."""
        listing = self.result(STUDENT, uris.NOTEBOOKS_LIST)
        self.assertIn("mine.ipynb", [e["name"] for e in listing["entries"]])
        self.assertNotIn("bob", [e["name"] for e in listing["entries"]])
        got = self.result(STUDENT, uris.NOTEBOOKS_GET, path="mine.ipynb")
        saved = self.result(STUDENT, uris.NOTEBOOKS_SAVE, path="again.ipynb", content=got["content"])
        self.assertEqual(saved["path"], "again.ipynb")
        self.assertTrue(os.path.isfile(os.path.join(self.homes.home("alice"), "again.ipynb")))

    def test_student_cannot_reach_another_by_any_trick(self):
        """Every path trick for get, list and save is an ERROR, and bob's notebook stays as it was."""
        for trick in self.homes.tricks():
            for procedure, kwargs in ((uris.NOTEBOOKS_GET, {}), (uris.NOTEBOOKS_SAVE, {"content": a_notebook("x")}),
                                      (uris.NOTEBOOKS_LIST, {})):
                answer = self.call(STUDENT, procedure, path=trick, **kwargs)
                if procedure == uris.NOTEBOOKS_LIST and isinstance(answer, message.Result):
                    names = [e["name"] for e in answer.args[0]["entries"]]
                    self.assertNotIn("secret.ipynb", names, trick)  # e.g. alice's own HOMES/ folder
                    continue
                self.assertIsInstance(answer, message.Error, (procedure, trick))
                self.assertIn(answer.error, (errors.PATH_OUTSIDE_NOTEBOOK_DIR, errors.NO_SUCH_PATH,
                                             errors.NOT_A_NOTEBOOK), (procedure, trick))
        self.homes.secret_unchanged(self)

    def test_teacher_sees_every_folder_and_saves_only_inside_one(self):
        """tess lists the users' folders, opens bob's notebook by bob/…, saves into alice's, not at the top."""
        listing = self.result(TEACHER, uris.NOTEBOOKS_LIST)
        self.assertEqual([e["name"] for e in listing["entries"]], ["alice", "bob"])
        got = self.result(TEACHER, uris.NOTEBOOKS_GET, path="bob/secret.ipynb")
        self.assertEqual(got["path"], "bob/secret.ipynb")
        self.result(TEACHER, uris.NOTEBOOKS_SAVE, path="alice/from_tess.ipynb", content=got["content"])
        top = self.call(TEACHER, uris.NOTEBOOKS_SAVE, path="loose.ipynb", content=got["content"])
        self.assertEqual(top.error, errors.PATH_OUTSIDE_NOTEBOOK_DIR)
        self.assertIn("<user>/<name>.ipynb", top.args[0])

    def test_observer_reads_every_folder_and_saves_nothing(self):
        """olga opens bob's notebook; her save is refused by the authorizer and, asked directly, by the service."""
        self.result(OBSERVER, uris.NOTEBOOKS_GET, path="bob/secret.ipynb")
        answer = self.call(OBSERVER, uris.NOTEBOOKS_SAVE, path="bob/secret.ipynb", content=a_notebook())
        self.assertEqual(answer.error, errors.NOT_AUTHORIZED)
        self.assertRaises(errors.NotAuthorized, self.folders.folder_for, "olga", "observer", "save")
        self.homes.secret_unchanged(self)

    def test_an_undisclosed_or_unknown_caller_is_refused(self):
        """Without a caller's identity (or with a role that is no user's) the service serves no folder."""
        for authid, authrole in ((None, None), ("alice", None), ("x", "user"), ("..", "student"),
                                 ("a/b", "student")):
            self.assertRaises(errors.NotAuthorized, self.folders.folder_for, authid, authrole, "list")
        refusal = self.assertRaises(errors.NotAuthorized, self.folders.folder_for, None, None, "get")
        self.assertIn("did not disclose who is calling", str(refusal))

    def test_a_student_without_a_folder_yet(self):
        """A new student lists an empty folder; their first save makes it (through ensure_home)."""
        made = []
        self.folders.ensure_home = lambda user: made.append(user) or os.mkdir(self.homes.home(user), 0o700)
        carol = Principal("carol", "student", "wampcra")
        self.assertEqual(self.result(carol, uris.NOTEBOOKS_LIST), {"path": "", "entries": []})
        self.assertEqual(self.call(carol, uris.NOTEBOOKS_GET, path="x.ipynb").error, errors.NO_SUCH_PATH)
        self.result(carol, uris.NOTEBOOKS_SAVE, path="first.ipynb", content=a_notebook())
        self.assertEqual(made, ["carol"])
        self.assertTrue(os.path.isfile(os.path.join(self.homes.home("carol"), "first.ipynb")))
