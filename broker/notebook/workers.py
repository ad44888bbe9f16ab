"""File work for the notebook procedures: off the reactor thread, and bounded.

Reading, validating and writing a notebook is slow and takes several times
the notebook's size in memory (a 14 MiB save: seconds, and hundreds of MiB).
:class:`BoundedWorkers` runs that work in a thread pool of its own (not the
reactor's, which DNS and others share) with a fixed number of threads, and
admits at most ``limit`` requests at once, running or waiting: one more is
refused at once with ``webkernel.error.notebooks_busy`` instead of queueing
without bound. The reactor thread only hands work over and takes results
back, so other clients are answered while a large save runs.
"""

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from broker import errors
from broker.notebook.store import NotebookError

#: threads reading and writing notebooks at once (``--notebook-threads``)
DEFAULT_THREADS = 2
#: notebook requests admitted at once, running or waiting (``--notebook-queue``)
DEFAULT_LIMIT = 8


class NotebooksBusy(NotebookError):
    """As many notebook requests as allowed are already running or waiting."""

    uri = errors.NOTEBOOKS_BUSY


class BoundedWorkers:
    """Runs functions in *pool* (a :class:`ThreadPool`), at most *limit* admitted at once.

    *reactor* is where results come back (``callFromThread``).
    """

    def __init__(self, reactor, pool, limit=DEFAULT_LIMIT):
        self.reactor = reactor
        self.pool = pool
        self.limit = limit
        self.admitted = 0

    def run(self, f, *args):
        """A Deferred of ``f(*args)`` run in the pool; it fails with :class:`NotebooksBusy` when full."""
        if self.admitted >= self.limit:
            return defer.fail(NotebooksBusy(
                f"{self.admitted} notebook requests are running or waiting, the most this service "
                f"admits (--notebook-queue {self.limit}); try again when one has finished"))
        self.admitted += 1
        d = threads.deferToThreadPool(self.reactor, self.pool, f, *args)
        d.addBoth(self._finished)
        return d

    def _finished(self, result):
        self.admitted -= 1
        return result


def notebook_pool(size=DEFAULT_THREADS):
    """A stopped thread pool of *size* threads for notebook work (the service starts and stops it)."""
    return ThreadPool(minthreads=0, maxthreads=size, name="webkernel-notebooks")
