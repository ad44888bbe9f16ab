"""The teacher's page at ``/class`` (``--users`` mode): a small HTML shell around the ``class`` bundle.

Like the notebook page (:mod:`broker.notebook.page`): the realm is in a
``<meta>`` tag, everything else is the bundle built from ``web/src/class/``
into ``broker/static/`` (``class.js``, ``class.css``), sent with the same
strict Content-Security-Policy. Teachers and observers sign in with the
notebook page's form (WAMP-CRA); what each may do is the router's decision.
"""

import html

from twisted.web.resource import Resource

from broker.notebook.page import CONTENT_SECURITY_POLICY, STATIC_DIR, render_shell

SCRIPT = "class.js"
STYLESHEET = "class.css"

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
        return render_shell(request, CONTENT_SECURITY_POLICY, self.static_dir, SCRIPT, STYLESHEET,
                            _NOT_BUILT, realm=html.escape(self.realm, quote=True), auth="wampcra",
                            router="", title="Class – webkernel", loading="class")
