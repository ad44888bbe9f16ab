"""The notebook session: ``webkernel.notebooks.list / get / save`` on the router.

An ordinary Autobahn session attached in-process to the embedded router (as
the kernel host is), with a role that may register the notebook procedures.
File work runs through *run* (in the service, a bounded thread pool of its
own: :mod:`broker.notebook.workers`), so a large notebook does not hold up
the router; a refusal (a :class:`~broker.notebook.store.NotebookError`)
reaches the caller as a WAMP error with the URI of its condition
(:func:`broker.errors.answering`, through :func:`broker.kernel.arguments.checked`).
"""

from autobahn.twisted.wamp import ApplicationSession
from twisted.internet import defer
from twisted.logger import Logger

from broker.kernel import arguments
from broker.notebook import uris
from broker.service_session import QuietRefusals


def synchronously(f, *args):
    """Run a function at once; a Deferred of its result (for tests)."""
    return defer.maybeDeferred(f, *args)


class NotebookSession(QuietRefusals, ApplicationSession):
    """Registers the notebook procedures for one :class:`~broker.notebook.store.NotebookDirectory`."""

    log = Logger()

    def __init__(self, config, directory, run=synchronously):
        super().__init__(config)
        self.directory = directory
        self.run = run
        self.joined = defer.Deferred()

    @defer.inlineCallbacks
    def onJoin(self, details):
        for function, uri in ((self.list_notebooks, uris.NOTEBOOKS_LIST),
                              (self.get_notebook, uris.NOTEBOOKS_GET),
                              (self.save_notebook, uris.NOTEBOOKS_SAVE)):
            yield self.register(arguments.checked(function, uri), uri)
        self.log.info("notebooks served from {root}", root=self.directory.root)
        self.joined.callback(self)

    def list_notebooks(self, path=""):
        arguments.text("path", path)
        return self.run(self.directory.list, path)

    def get_notebook(self, path):
        arguments.text("path", path)
        return self.run(self.directory.get, path)

    def save_notebook(self, path, content):
        arguments.text("path", path)
        return self.run(self.directory.save, path, content)
