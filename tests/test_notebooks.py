"""The notebook directory, its WAMP procedures, and the page at ``/`` (no browser here)."""

import errno
import json
import os
import tempfile

import nbformat

import broker  # noqa: F401  (first: selects Twisted for txaio before Autobahn's serializers load)
from autobahn.wamp import message, types
from autobahn.wamp.serializer import MsgPackSerializer
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from broker import errors
from broker.auth import NOTEBOOKS_NAMESPACE, NOTEBOOKS_ROLE, Principal
from broker.notebook import page, store, uris, workers
from broker.notebook.service import NotebookService
from broker.notebook.session import NotebookSession
from broker.router import wire
from broker.testing import MemoryRouter


def a_notebook(source="print('hi')"):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source), nbformat.v4.new_markdown_cell("# Title")]
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    return notebook


class NotebookDirectoryTests(SynchronousTestCase):
    """Listing, reading and writing .ipynb files, and nothing outside the directory."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, self.root)
        os.mkdir(os.path.join(self.root, "sub"))
        os.mkdir(os.path.join(self.root, ".hidden"))
        nbformat.write(a_notebook(), os.path.join(self.root, "one.ipynb"))
        nbformat.write(a_notebook("2"), os.path.join(self.root, "sub", "two.ipynb"))
        with open(os.path.join(self.root, "notes.txt"), "w") as f:
            f.write("not a notebook")
        self.directory = store.NotebookDirectory(self.root)

    def test_list_shows_directories_then_notebooks(self):
        """Subdirectories first, then .ipynb files; other and hidden files are left out."""
        listing = self.directory.list("")
        self.assertEqual([(e["name"], e["type"]) for e in listing["entries"]],
                         [("sub", "directory"), ("one.ipynb", "notebook")])
        self.assertEqual(self.directory.list("sub")["entries"][0]["path"], "sub/two.ipynb")

    def test_get_returns_plain_nbformat_4(self):
        """get returns the notebook as JSON data, with its name and size."""
        got = self.directory.get("one.ipynb")
        self.assertEqual(got["name"], "one.ipynb")
        self.assertEqual(got["content"]["nbformat"], 4)
        self.assertEqual(got["content"]["cells"][0]["source"], "print('hi')")
        json.dumps(got)  # plain data, ready for any serializer
        self.assertNotIn("warning", got)

    def test_save_validates_and_writes(self):
        """save writes a valid notebook atomically; get reads it back."""
        content = json.loads(nbformat.writes(a_notebook("x = 1")))
        saved = self.directory.save("sub/new.ipynb", content)
        self.assertEqual(saved["path"], "sub/new.ipynb")
        on_disk = nbformat.read(os.path.join(self.root, "sub", "new.ipynb"), as_version=4)
        nbformat.validate(on_disk)
        self.assertEqual(on_disk.cells[0].source, "x = 1")
        self.assertEqual([n for n in os.listdir(os.path.join(self.root, "sub")) if n.endswith(".tmp")], [])

    def test_saved_text_is_what_nbformat_writes(self):
        """The file save writes is byte for byte nbformat.writes' text, transient fields stripped."""
        notebook = a_notebook("x = 1\ny = 'é'\n")
        notebook.metadata.update(signature="sha256:x", kernelspec={"name": "python3", "display_name": "P"})
        notebook.cells[0].metadata["trusted"] = True
        notebook.cells[0].outputs.append(nbformat.v4.new_output(
            "display_data", data={"image/png": "aGk=\n", "text/plain": "a\nb", "application/json": {"k": [1]}},
            metadata={"image/png": {"width": 3}}))
        notebook.cells[0].outputs.append(nbformat.v4.new_output("execute_result", execution_count=1,
                                                                data={"text/html": "<b>x</b>\n<i>y</i>"}))
        notebook.cells.append(nbformat.v4.new_markdown_cell("![a](attachment:a.png)", attachments={
            "a.png": {"image/png": "aGk="}}))
        notebook.cells.append(nbformat.v4.new_raw_cell("raw\ntext"))
        content = json.loads(json.dumps(notebook))
        self.directory.save("same.ipynb", content)
        with open(os.path.join(self.root, "same.ipynb"), encoding="utf-8") as f:
            self.assertEqual(f.read(), nbformat.writes(nbformat.from_dict(content), version=4))
        self.assertEqual(content["metadata"]["signature"], "sha256:x")  # the caller's content is untouched

    def test_paths_outside_are_refused(self):
        """'..', absolute paths and symlinks out of the directory are refused."""
        outside = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, outside)
        nbformat.write(a_notebook(), os.path.join(outside, "secret.ipynb"))
        os.symlink(outside, os.path.join(self.root, "link"))
        for path in ["../x.ipynb", "sub/../../x.ipynb", "/etc/passwd", "link/secret.ipynb", 3]:
            with self.assertRaises(store.PathOutsideNotebookDir, msg=repr(path)):
                self.directory.get(path)
        self.assertRaises(store.PathOutsideNotebookDir, self.directory.list, "..")
        self.assertRaises(store.PathOutsideNotebookDir, self.directory.save, "../evil.ipynb",
                          json.loads(nbformat.writes(a_notebook())))
        self.assertNotIn("link", [e["name"] for e in self.directory.list("")["entries"]])

    def test_refusals_name_the_condition(self):
        """Missing files, non-notebooks and invalid content each get their own error."""
        self.assertRaises(store.NoSuchPath, self.directory.get, "missing.ipynb")
        self.assertRaises(store.NoSuchPath, self.directory.list, "nowhere")
        self.assertRaises(store.NotANotebook, self.directory.get, "notes.txt")
        self.assertRaises(store.NoSuchPath, self.directory.save, "nodir/x.ipynb",
                          json.loads(nbformat.writes(a_notebook())))
        for bad in [{"cells": []}, {"nbformat": 4, "nbformat_minor": 5, "cells": "no"}, "text"]:
            self.assertRaises(store.InvalidNotebook, self.directory.save, "bad.ipynb", bad)
        with open(os.path.join(self.root, "broken.ipynb"), "w") as f:
            f.write("{not json")
        self.assertRaises(store.InvalidNotebook, self.directory.get, "broken.ipynb")
        self.assertFalse(os.path.exists(os.path.join(self.root, "bad.ipynb")))


def nested(depth):
    """A JSON object nested *depth* levels deep."""
    value = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


class NotebookBoundsTests(SynchronousTestCase):
    """What a file or a content may cost is refused before the work, with a documented error."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, self.root)
        self.directory = store.NotebookDirectory(self.root)
        self.content = json.loads(nbformat.writes(a_notebook()))

    def test_a_file_over_the_size_limit_is_not_read(self):
        """A 300 MB (sparse) .ipynb is refused as too large from its size, without reading it."""
        huge = os.path.join(self.root, "huge.ipynb")
        with open(huge, "wb") as f:
            f.truncate(300 * 1000 * 1000)
        with self.assertRaises(store.NotebookTooLarge) as caught:
            self.directory.get("huge.ipynb")
        self.assertIn(str(store.DEFAULT_MAX_NOTEBOOK_SIZE), str(caught.exception))
        self.assertEqual(caught.exception.uri, "webkernel.error.notebook_too_large")

    def test_the_size_limit_is_configurable(self):
        """A notebook of max_size bytes is read; one byte more is refused."""
        nbformat.write(a_notebook(), os.path.join(self.root, "one.ipynb"))
        size = os.path.getsize(os.path.join(self.root, "one.ipynb"))
        self.assertEqual(store.NotebookDirectory(self.root, max_size=size).get("one.ipynb")["size"], size)
        self.assertRaises(store.NotebookTooLarge,
                          store.NotebookDirectory(self.root, max_size=size - 1).get, "one.ipynb")

    def test_a_fifo_is_not_opened_as_a_notebook(self):
        """A FIFO named like a notebook is refused at once rather than blocking the reader."""
        os.mkfifo(os.path.join(self.root, "pipe.ipynb"))
        self.assertRaises(store.NotANotebook, self.directory.get, "pipe.ipynb")

    def test_names_too_long_for_the_filesystem(self):
        """A name over 255 bytes (UTF-8) is an invalid argument for get and save, nothing written."""
        for name in ["a" * 250 + ".ipynb", "é" * 126 + ".ipynb", "d" * 300 + "/x.ipynb"]:
            with self.assertRaises(store.InvalidPath) as caught:
                self.directory.save(name, self.content)
            self.assertEqual(caught.exception.uri, "wamp.error.invalid_argument")
            self.assertRaises(store.InvalidPath, self.directory.get, name)
        self.assertRaises(store.InvalidPath, self.directory.get, "/".join(["d" * 200] * 21) + ".ipynb")
        self.directory.save("a" * 249 + ".ipynb", self.content)  # 255 bytes: fine
        self.assertEqual(os.listdir(self.root), ["a" * 249 + ".ipynb"])

    def test_a_write_the_filesystem_refuses_is_notebook_not_saved(self):
        """A disk full at the rename is notebook_not_saved; the old file and the directory are as they were."""
        self.directory.save("kept.ipynb", self.content)
        before = sorted(os.listdir(self.root))

        def disk_full(source, target):
            raise OSError(errno.ENOSPC, "No space left on device")
        self.patch(store.os, "replace", disk_full)
        with self.assertRaises(store.NotebookNotSaved) as caught:
            self.directory.save("kept.ipynb", {**self.content, "metadata": {"changed": True}})
        self.assertEqual(caught.exception.uri, "webkernel.error.notebook_not_saved")
        self.assertIn("No space left on device", str(caught.exception))
        self.assertEqual(sorted(os.listdir(self.root)), before)
        self.assertNotIn("changed", self.directory.get("kept.ipynb")["content"]["metadata"])

    def test_nbformat_minor_must_be_an_integer(self):
        """nbformat_minor "x" (or missing, or negative) is an invalid notebook."""
        for minor in ["x", None, -1, 4.5]:
            self.assertRaises(store.InvalidNotebook, self.directory.save, "m.ipynb",
                              {**self.content, "nbformat_minor": minor})

    def test_deep_nesting_is_an_invalid_notebook(self):
        """Metadata nested 1,000 deep is refused before nbformat recurses into it, on save and on get."""
        self.assertRaises(store.InvalidNotebook, self.directory.save, "deep.ipynb",
                          {**self.content, "metadata": nested(1000)})
        self.directory.save("ok.ipynb", {**self.content, "metadata": nested(store.MAX_NESTING - 1)})
        for depth in [store.MAX_NESTING + 1, 1000, 100_000]:
            with open(os.path.join(self.root, "deep.ipynb"), "w") as f:
                f.write(json.dumps({**self.content, "metadata": {}})[:-1]
                        + ', "x": ' + "[" * depth + "]" * depth + "}")
            with self.assertRaises(store.InvalidNotebook, msg=depth) as caught:
                self.directory.get("deep.ipynb")
            self.assertIn("nested deeper", str(caught.exception))


class NotebookSessionTests(SynchronousTestCase):
    """The procedures on the router, called by a network client."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, self.root)
        nbformat.write(a_notebook(), os.path.join(self.root, "one.ipynb"))
        self.memory = MemoryRouter()
        self.session = NotebookSession(types.ComponentConfig(realm="realm1"),
                                       store.NotebookDirectory(self.root))
        self.memory.attach(self.session, Principal("notebooks", NOTEBOOKS_ROLE, "local"))
        self.memory.clock.advance(0)
        self.client = self.memory.joined()

    def call(self, procedure, **kwargs):
        self.client.send(message.Call(self.client.request_id(), procedure, kwargs=kwargs))
        for _ in range(3):
            self.memory.clock.advance(0)
        return self.client.take()[-1]

    def test_registers_and_answers(self):
        """list, get and save answer a client; the saved file is on disk."""
        self.assertIsNotNone(self.session.joined.result)
        listing = self.call(uris.NOTEBOOKS_LIST).args[0]
        self.assertEqual([e["name"] for e in listing["entries"]], ["one.ipynb"])
        got = self.call(uris.NOTEBOOKS_GET, path="one.ipynb").args[0]
        saved = self.call(uris.NOTEBOOKS_SAVE, path="copy.ipynb", content=got["content"]).args[0]
        self.assertEqual(saved["name"], "copy.ipynb")
        self.assertTrue(os.path.exists(os.path.join(self.root, "copy.ipynb")))

    def test_refusals_are_documented_errors(self):
        """Each refusal is an ERROR with its webkernel.error.* URI and a message."""
        cases = [
            (uris.NOTEBOOKS_GET, {"path": "../etc/passwd"}, errors.PATH_OUTSIDE_NOTEBOOK_DIR),
            (uris.NOTEBOOKS_GET, {"path": "none.ipynb"}, errors.NO_SUCH_PATH),
            (uris.NOTEBOOKS_GET, {"path": "x.txt"}, errors.NOT_A_NOTEBOOK),
            (uris.NOTEBOOKS_SAVE, {"path": "x.ipynb", "content": {"nbformat": 3}}, errors.INVALID_NOTEBOOK),
            (uris.NOTEBOOKS_GET, {}, "wamp.error.invalid_argument"),
            (uris.NOTEBOOKS_GET, {"path": 7}, "wamp.error.invalid_argument"),
            (uris.NOTEBOOKS_LIST, {"bogus": 1}, "wamp.error.invalid_argument"),
            (uris.NOTEBOOKS_SAVE, {"path": "x.ipynb"}, "wamp.error.invalid_argument"),
        ]
        for procedure, kwargs, uri in cases:
            answer = self.call(procedure, **kwargs)
            self.assertIsInstance(answer, message.Error, (procedure, kwargs))
            self.assertEqual(answer.error, uri)
            self.assertTrue(answer.args and answer.args[0])

    def test_bounds_are_documented_errors(self):
        """A long name, a bad nbformat_minor and a file too large each get their documented URI."""
        content = json.loads(nbformat.writes(a_notebook()))
        with open(os.path.join(self.root, "huge.ipynb"), "wb") as f:
            f.truncate(store.DEFAULT_MAX_NOTEBOOK_SIZE + 1)
        cases = [
            (uris.NOTEBOOKS_SAVE, {"path": "n" * 300 + ".ipynb", "content": content},
             "wamp.error.invalid_argument"),
            (uris.NOTEBOOKS_GET, {"path": "n" * 300 + ".ipynb"}, "wamp.error.invalid_argument"),
            (uris.NOTEBOOKS_SAVE, {"path": "m.ipynb", "content": {**content, "nbformat_minor": "x"}},
             errors.INVALID_NOTEBOOK),
            (uris.NOTEBOOKS_GET, {"path": "huge.ipynb"}, "webkernel.error.notebook_too_large"),
        ]
        for procedure, kwargs, uri in cases:
            answer = self.call(procedure, **kwargs)
            self.assertIsInstance(answer, message.Error, procedure)
            self.assertEqual(answer.error, uri)

    def test_deep_messagepack_metadata_is_an_invalid_notebook(self):
        """A save whose metadata is nested 1,000 deep, sent as MessagePack, is invalid_notebook."""
        content = {**json.loads(nbformat.writes(a_notebook())), "metadata": nested(1000)}
        serializer = MsgPackSerializer()
        payload, _ = serializer.serialize(message.Call(self.client.request_id(), uris.NOTEBOOKS_SAVE,
                                                       kwargs={"path": "deep.ipynb", "content": content}))
        [call] = wire.decode(serializer, payload, is_binary=True)
        self.client.send(call)
        for _ in range(3):
            self.memory.clock.advance(0)
        answer = self.client.take()[-1]
        self.assertIsInstance(answer, message.Error)
        self.assertEqual(answer.error, errors.INVALID_NOTEBOOK)
        self.assertIn("nested deeper", answer.args[0])
        self.assertFalse(os.path.exists(os.path.join(self.root, "deep.ipynb")))


class HeldPool:
    """A thread pool that holds each job until the test runs it (Twisted's ``callInThreadWithCallback``)."""

    def __init__(self):
        self.jobs = []
        self.started = self.stopped = False

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        self.jobs.append((on_result, f, args, kwargs))

    def run(self, index=0):
        on_result, f, args, kwargs = self.jobs.pop(index)
        try:
            result = f(*args, **kwargs)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True


class ThreadReactor:
    """The reactor side of deferToThreadPool: results come back at once."""

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


class NotebookWorkersTests(SynchronousTestCase):
    """File work runs off the reactor, in the service's own pool, with a bounded number admitted."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, self.root)
        nbformat.write(a_notebook(), os.path.join(self.root, "one.ipynb"))
        self.memory = MemoryRouter()
        self.pool = HeldPool()
        self.workers = workers.BoundedWorkers(ThreadReactor(), self.pool, limit=2)
        session = NotebookSession(types.ComponentConfig(realm="realm1"),
                                  store.NotebookDirectory(self.root), run=self.workers.run)
        self.memory.attach(session, Principal("notebooks", NOTEBOOKS_ROLE, "local"))
        self.memory.clock.advance(0)
        self.content = json.loads(nbformat.writes(a_notebook("big = 1")))

    def call(self, client, procedure, **kwargs):
        client.send(message.Call(client.request_id(), procedure, kwargs=kwargs))
        self.turn()

    def turn(self):
        for _ in range(3):
            self.memory.clock.advance(0)

    def test_other_clients_are_answered_while_a_save_runs(self):
        """While a save is still in its thread, another client's calls are answered, then the save's."""
        saver, other, callee = self.memory.joined(), self.memory.joined(), self.memory.joined()
        callee.send(message.Register(callee.request_id(), "com.example.echo"))
        self.turn()
        [registered] = callee.take()
        self.call(saver, uris.NOTEBOOKS_SAVE, path="big.ipynb", content=self.content)
        self.assertEqual(len(self.pool.jobs), 1)  # the save waits in the pool, not on the reactor
        self.call(other, "com.example.echo", args=[1])
        [invocation] = callee.take()
        callee.send(message.Yield(invocation.request, args=[1]))
        self.turn()
        self.call(other, uris.NOTEBOOKS_LIST)
        self.pool.run(1)  # the list, while the save has not run yet
        self.turn()
        answers = other.take()
        self.assertEqual([type(a) for a in answers], [message.Result, message.Result])
        self.assertEqual(answers[1].args[0]["entries"][0]["name"], "one.ipynb")
        self.assertEqual(saver.take(), [])
        self.pool.run()
        self.turn()
        [saved] = saver.take()
        self.assertEqual(saved.args[0]["name"], "big.ipynb")
        self.assertEqual(self.workers.admitted, 0)

    def test_admitted_requests_are_bounded(self):
        """Past the limit a request is refused at once with notebooks_busy; a finished one makes room."""
        client = self.memory.joined()
        for _ in range(2):
            self.call(client, uris.NOTEBOOKS_GET, path="one.ipynb")
        self.call(client, uris.NOTEBOOKS_SAVE, path="x.ipynb", content=self.content)
        [refused] = client.take()
        self.assertIsInstance(refused, message.Error)
        self.assertEqual(refused.error, "webkernel.error.notebooks_busy")
        self.assertIn("--notebook-queue 2", refused.args[0])
        self.assertEqual(len(self.pool.jobs), 2)
        self.assertFalse(os.path.exists(os.path.join(self.root, "x.ipynb")))
        self.pool.run()
        self.turn()
        self.call(client, uris.NOTEBOOKS_SAVE, path="x.ipynb", content=self.content)
        self.assertEqual(len(self.pool.jobs), 2)
        while self.pool.jobs:
            self.pool.run()
        self.turn()
        self.assertEqual([type(a) for a in client.take()], [message.Result] * 3)
        self.assertTrue(os.path.exists(os.path.join(self.root, "x.ipynb")))

    def test_a_failed_request_frees_its_place(self):
        """A refused get (no such file) gives its place back, like a successful one."""
        client = self.memory.joined()
        self.call(client, uris.NOTEBOOKS_GET, path="missing.ipynb")
        self.pool.run()
        self.turn()
        [answer] = client.take()
        self.assertEqual(answer.error, errors.NO_SUCH_PATH)
        self.assertEqual(self.workers.admitted, 0)


class NotebookServiceTests(SynchronousTestCase):
    """The service attaches its session through the function the wiring hands it."""

    def test_joins_with_its_own_role(self):
        """The notebook session is webkernel_notebooks, not the kernel host, and its URIs are that role's."""
        attached = []
        root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, root)
        service = NotebookService(lambda session, principal: attached.append(principal),
                                  "webkernel", MemoryRouter().clock, root, pool=HeldPool())
        service.startService()
        self.assertEqual([p.authrole for p in attached], [NOTEBOOKS_ROLE])
        for uri in (uris.NOTEBOOKS_LIST, uris.NOTEBOOKS_GET, uris.NOTEBOOKS_SAVE):
            self.assertTrue(uri.startswith(NOTEBOOKS_NAMESPACE + "."), uri)

    def test_the_pool_lives_and_dies_with_the_service(self):
        """The service's own thread pool starts with it and stops with it; the session's work goes there."""
        root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, root)
        pool = HeldPool()
        service = NotebookService(lambda session, principal: None, "webkernel", ThreadReactor(), root,
                                  pool=pool, limit=3)
        service.startService()
        self.assertTrue(pool.started)
        service.session.list_notebooks()
        self.assertEqual(len(pool.jobs), 1)
        self.assertEqual(service.workers.limit, 3)
        service.stopService()
        self.assertTrue(pool.stopped)

    def test_a_real_pool_runs_the_work_in_another_thread(self):
        """With the default pool, the work runs in a thread other than the caller's."""
        import threading

        root = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, root)
        service = NotebookService(lambda session, principal: None, "webkernel", ThreadReactor(), root)
        service.startService()
        self.addCleanup(service.stopService)
        done = threading.Event()
        names = []
        service.workers.run(lambda: names.append(threading.current_thread().name)).addCallback(
            lambda _: done.set())
        self.assertTrue(done.wait(30))
        self.assertNotEqual(names, [threading.current_thread().name])


class NotebookPageTests(SynchronousTestCase):
    """The page's shell: realm and authentication in meta tags, a strict CSP."""

    def render(self, resource):
        request = DummyRequest([b""])
        body = resource.render_GET(request)
        return request, body.decode()

    def built(self):
        static = tempfile.mkdtemp()
        self.addCleanup(_remove_tree, static)
        with open(os.path.join(static, page.SCRIPT), "w") as f:
            f.write("")
        return static

    def test_page_carries_realm_auth_and_csp(self):
        """The realm is escaped into a meta tag; script only from self; no inline script."""
        request, body = self.render(page.NotebookPage('r"<x>', anonymous=True, static_dir=self.built()))
        self.assertIn('content="r&quot;&lt;x&gt;"', body)
        self.assertIn('name="webkernel-auth" content="ticket anonymous"', body)
        self.assertNotIn("<script>", body)
        csp = request.responseHeaders.getRawHeaders(b"content-security-policy")[0].decode()
        self.assertIn("script-src 'self';", csp)
        self.assertIn("connect-src 'self';", csp)   # no ws: / wss: to any host
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"referrer-policy"), [b"no-referrer"])

    def test_token_mode_and_unbuilt_assets(self):
        """Without --anonymous the page uses the ticket; unbuilt assets get a 503 that says what to do."""
        _, body = self.render(page.NotebookPage("webkernel", anonymous=False, static_dir=self.built()))
        self.assertIn('name="webkernel-auth" content="ticket"', body)
        request, body = self.render(page.NotebookPage("webkernel", False, static_dir="/no/such/dir"))
        self.assertEqual(request.responseCode, 503)
        self.assertIn("npm run build", body)

    def test_users_mode_asks_for_a_sign_in(self):
        """With --users the page is told to sign in by WAMP-CRA (the mode only: no secret on the page)."""
        _, body = self.render(page.NotebookPage("webkernel", False, static_dir=self.built(), users=True))
        self.assertIn('name="webkernel-auth" content="wampcra"', body)

    def test_a_fronts_page_joins_the_router_it_names(self):
        """On a --front, the page is told the Crossbar.io WebSocket and its CSP lets it connect there only."""
        url = "ws://10.0.0.7:8080/ws"
        request, body = self.render(page.NotebookPage("webkernel", True, static_dir=self.built(),
                                                      router_url=url))
        self.assertIn(f'<meta name="webkernel-router" content="{url}">', body)
        csp = request.responseHeaders.getRawHeaders(b"content-security-policy")[0].decode()
        self.assertIn(f"connect-src 'self' {url};", csp)

    def test_a_classroom_fronts_page_signs_in_by_ticket(self):
        """--front-auth ticket tells the page to sign users in by ticket; plain-ws only if the operator allowed it."""
        from twisted.internet.task import Clock

        from broker.web import make_front_site
        for allowed, auth in ((False, "user-ticket"), (True, "user-ticket plain-ws")):
            site = make_front_site("ws://10.0.0.7:8080/ws", Clock(), auth="ticket",
                                   plain_ws=allowed)
            resource = site.resource.getChildWithDefault(b"", None)
            resource.static_dir = self.built()
            _, body = self.render(resource)
            self.assertIn(f'name="webkernel-auth" content="{auth}"', body)
        resource = make_front_site("wss://x/ws", Clock()).resource.getChildWithDefault(b"", None)
        self.assertEqual(resource.auth, "ticket anonymous")

    def test_which_router_urls_would_send_a_ticket_in_clear(self):
        """Plain ws:// to any host but loopback sends a password unencrypted; wss:// and loopback do not."""
        from broker.cleartext import sends_in_clear
        for url in ("ws://10.0.0.7:8080/ws", "ws://crossbar.example/ws", "ws://[2001:db8::1]/ws",
                    "ws://127.0.0.1.example/ws"):
            self.assertTrue(sends_in_clear(url), url)
        for url in ("wss://crossbar.example/ws", "ws://127.0.0.1:8080/ws", "ws://127.3.4.5/ws",
                    "ws://localhost:8080/ws", "ws://[::1]:8080/ws", "ws://LOCALHOST/ws"):
            self.assertFalse(sends_in_clear(url), url)


def _remove_tree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
