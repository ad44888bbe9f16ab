"""The collected notebooks as a zip, over HTTP: ``/class-zip/<ticket>.zip``.

The page signs in over WAMP (WAMP-CRA) and holds no password an HTTP request
could carry, so ``webkernel.class.collect`` answers a *download ticket*: a
random, single-use name for that teacher's ``collected/<stem>/`` that lasts
:data:`LIFETIME` seconds. :class:`DownloadTickets` owns them (at most
:data:`MAX_TICKETS`; the oldest goes first); :class:`CollectedZip` serves a
ticket once as ``<stem>.zip`` (one ``<student>.ipynb`` per collected
notebook), built in a thread from the teacher's folder (following no
symlink). An unknown, used or expired ticket is 404.
"""

import io
import json
import secrets
import zipfile
from collections import OrderedDict

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

LIFETIME = 120.0
MAX_TICKETS = 64
#: the largest zip served, in bytes of notebooks (more is refused: collect in groups)
MAX_ZIP_BYTES = 256 * 1024 * 1024


class DownloadTickets:
    """Single-use tickets: token -> what it is for, until *lifetime* seconds after issue."""

    def __init__(self, clock, lifetime=LIFETIME, limit=MAX_TICKETS):
        self.clock, self.lifetime, self.limit = clock, lifetime, limit
        self._tickets = OrderedDict()  # token -> (expires, what)

    def issue(self, what):
        token = secrets.token_hex(16)
        self._tickets[token] = (self.clock.seconds() + self.lifetime, what)
        while len(self._tickets) > self.limit:
            self._tickets.popitem(last=False)
        return token

    def take(self, token):
        """What *token* is for (once), or None if it is unknown, used or expired."""
        expires, what = self._tickets.pop(token, (0, None))
        return what if self.clock.seconds() < expires else None


def zip_collected(folder, into):
    """The bytes of a zip of every notebook in *folder*'s *into* (``<name>.ipynb`` each)."""
    buffer, total = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in folder.list(into)["entries"]:
            if entry.get("type") != "notebook":
                continue
            text = json.dumps(folder.get(f"{into}/{entry['name']}")["content"], indent=1)
            total += len(text)
            if total > MAX_ZIP_BYTES:
                raise ValueError(f"more than {MAX_ZIP_BYTES} bytes of notebooks")
            archive.writestr(entry["name"], text)
    return buffer.getvalue()


class CollectedZip(Resource):
    """``/class-zip/<ticket>.zip``; *run* ``(f, *args)`` runs the zipping off the reactor."""

    isLeaf = True
    log = Logger()

    def __init__(self, tickets, run):
        super().__init__()
        self.tickets, self.run = tickets, run

    def render_GET(self, request):
        name = request.postpath[0].decode("ascii", "replace") if request.postpath else ""
        what = self.tickets.take(name[:-len(".zip")] if name.endswith(".zip") else name)
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-content-type-options", b"nosniff")
        if what is None:
            request.setResponseCode(404)
            return b"no such download (a download link works once, for two minutes)\n"
        folder, into, stem = what
        d = self.run(zip_collected, folder, into)
        d.addCallbacks(lambda data: self._send(request, stem, data),
                       lambda failure: self._failed(request, failure))
        return NOT_DONE_YET

    def _send(self, request, stem, data):
        request.setHeader(b"content-type", b"application/zip")
        request.setHeader(b"content-disposition",
                          f'attachment; filename="{stem}.zip"'.encode("ascii", "replace"))
        request.write(data)
        request.finish()

    def _failed(self, request, failure):
        self.log.warn("collected zip failed: {why}", why=failure.getErrorMessage())
        request.setResponseCode(500)
        request.write(b"the zip could not be made\n")
        request.finish()
