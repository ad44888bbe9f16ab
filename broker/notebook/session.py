"""The notebook session: ``webkernel.notebooks.list / get / save`` on the router.

An ordinary Autobahn session attached in-process to the embedded router (as
the kernel host is), with a role that may register the notebook procedures.
File work runs through *run* (in the service, a bounded thread pool of its
own: :mod:`broker.notebook.workers`), so a large notebook does not hold up
the router; a refusal (a :class:`~broker.notebook.store.NotebookError`)
reaches the caller as a WAMP error with the URI of its condition
(:func:`broker.errors.answering`, through :func:`broker.kernel.arguments.checked`).

Which folder a call works on is *folders*' answer for the caller (the
router discloses the caller's authid and authrole to this session): in
single-token mode one directory for everyone (:class:`SharedFolder`), in
multi-user mode each user's own (:mod:`broker.classroom.notebooks`).
"""

from autobahn.twisted.wamp import Session
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel import arguments
from broker.notebook import uris
from broker.service_session import QuietRefusals


def synchronously(f, *args):
    """Run a function at once; a Deferred of its result (for tests)."""
    return defer.maybeDeferred(f, *args)


class SharedFolder:
    """Single-token mode: every caller's notebooks are in one directory."""

    def __init__(self, directory):
        self.directory = directory
        self.root = directory.root

    def folder_for(self, authid, authrole, action):
        return self.directory


class NotebookSession(QuietRefusals, Session):
    """Registers the notebook procedures for one :class:`~broker.notebook.store.NotebookDirectory`,
    or for the folders of *folders* (``folder_for(authid, authrole, action)``).

    *invoke* is the registrations' invocation policy (``roundrobin``: one of
    several notebook services sharing the procedures); None registers them
    for this session alone.
    """

    log = Logger()

    def __init__(self, config, directory=None, run=synchronously, folders=None, invoke=None):
        super().__init__(config)
        self.invoke = invoke
        self.folders = folders if folders is not None else SharedFolder(directory)
        self.run = run
        self.joined = defer.Deferred()

    @defer.inlineCallbacks
    def onJoin(self, details):
        for function, uri in ((self.list_notebooks, uris.NOTEBOOKS_LIST),
                              (self.get_notebook, uris.NOTEBOOKS_GET),
                              (self.save_notebook, uris.NOTEBOOKS_SAVE)):
            yield self.register(arguments.checked(function, uri), uri,
                                options=RegisterOptions(details_arg="details", invoke=self.invoke))
        self.log.info("notebooks served from {root}", root=self.folders.root)
        self.log.info("notebook procedures registered on realm {realm} (invoke: {invoke})",
                      realm=details.realm, invoke=self.invoke or "single")
        self.joined.callback(self)

    def list_notebooks(self, path="", details=None):
        return self._work("list", details, path)

    def get_notebook(self, path, details=None):
        return self._work("get", details, path)

    def save_notebook(self, path, content, details=None):
        return self._work("save", details, path, content)

    def _work(self, action, details, path, *rest):
        """Run *action* of the caller's folder in the workers."""
        arguments.text("path", path)
        caller = (getattr(details, "caller_authid", None), getattr(details, "caller_authrole", None))
        d = defer.maybeDeferred(self.folders.folder_for, *caller, action)
        d.addCallback(lambda folder: self.run(getattr(folder, action), path, *rest))
        return d
