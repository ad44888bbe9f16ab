"""The teacher's page at ``/class`` (``--users`` mode): a small HTML shell around the ``class`` bundle.

Like the notebook page (:mod:`broker.notebook.page`): the realm is in a
``<meta>`` tag, everything else is the bundle built from ``web/src/class/``
into ``broker/static/`` (``class.js``, ``class.css``), sent with the same
strict Content-Security-Policy. Teachers and observers sign in with the
notebook page's form (WAMP-CRA); what each may do is the router's decision.
"""

import html
import os

from twisted.web.resource import Resource

from broker.notebook.page import CONTENT_SECURITY_POLICY, STATIC_DIR

SCRIPT = "class.js"
STYLESHEET = "class.css"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="webkernel-realm" content="{realm}">
<meta name="webkernel-auth" content="wampcra">
<title>Class – webkernel</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="static/{stylesheet}?v={version}">
<script src="static/{script}?v={version}" defer></script>
</head>
<body>
<div id="app"><p class="boot">Loading the class…</p></div>
</body>
</html>
"""

_NOT_BUILT = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>webkernel</title></head>
<body><p>The class page's assets are not built: <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>.</p></body></html>
"""


class ClassPage(Resource):
    """``/class``: the teacher's page."""

    isLeaf = True

    def __init__(self, realm, static_dir=STATIC_DIR):
        super().__init__()
        self.realm = realm
        self.static_dir = static_dir

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"no-referrer")
        script = os.path.join(self.static_dir, SCRIPT)
        if not os.path.exists(script):
            request.setResponseCode(503)
            return _NOT_BUILT
        return _PAGE.format(realm=html.escape(self.realm, quote=True), script=SCRIPT,
                            stylesheet=STYLESHEET, version=int(os.stat(script).st_mtime)).encode()
