"""The notebook page at ``/`` and its assets at ``/static/``.

The page is a small HTML shell: the realm and the authentication the page
should use (``ticket``, ``ticket anonymous``, ``wampcra``: multi-user mode's
sign-in form, or ``user-ticket``: the same form signing in by WAMP-Ticket, on a
front for a classroom Crossbar.io) are in ``<meta>`` tags, and so is, on a front
(``--front``), the Crossbar.io WebSocket the page joins instead of ``/ws``;
everything else is the bundle built from
``web/`` into ``broker/static/`` (``npm ci && npm run build`` in ``web/``;
see docs/notebook.md). The page is sent with a strict Content-Security-Policy:
scripts only from this origin and no inline script, so output a kernel
produces cannot run script even if it got past the sanitizer.
"""

import html
import os

from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.static import File

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
SCRIPT = "notebook.js"
STYLESHEET = "notebook.css"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    # CodeMirror and KaTeX set style attributes and style elements from script
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    # the service's own origin only; 'self' covers ws:/wss: to it (CSP Level 3)
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
])

#: the HTML shell of a page that is a bundle built from ``web/`` (this one, the class page)
SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="webkernel-realm" content="{realm}">
<meta name="webkernel-auth" content="{auth}">
{router}<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="static/{stylesheet}?v={version}">
<script src="static/{script}?v={version}" defer></script>
</head>
<body>
<div id="app"><p class="boot">Loading the {loading}…</p></div>
</body>
</html>
"""

_NOT_BUILT = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webkernel</title></head>
<body><h1>webkernel</h1>
<p>The WAMP router is running (WebSocket at <code>/ws</code>), but the notebook
page's assets are not built. From a checkout: <code>cd web &amp;&amp; npm ci &amp;&amp;
npm run build</code> (or run <code>./serve</code>, which does it), then reinstall.
See docs/notebook.md.</p></body></html>
"""


def content_security_policy(router_url=None):
    """The page's policy; a front's page may also connect to the router at *router_url*."""
    if router_url is None:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {router_url}")


def router_meta(router_url):
    """The ``webkernel-router`` meta tag of a front's page (its WebSocket URL), else nothing."""
    if router_url is None:
        return ""
    return f'<meta name="webkernel-router" content="{html.escape(router_url, quote=True)}">\n'


#: how users sign in: WAMP-CRA on webkernel's own router (``--users``), or their
#: password as a WAMP ticket on a classroom Crossbar.io (``--front-auth ticket``)
USERS_WAMPCRA = "wampcra"
USERS_TICKET = "user-ticket"
#: with USERS_TICKET: the operator let the page send passwords over plain ws://
PLAIN_WS = "plain-ws"


def page_auth(anonymous, users, plain_ws=False):
    """What the ``webkernel-auth`` meta tag tells the page (no secret: the mode only).

    *users* ``True`` or ``"wampcra"`` (``--users``): the page shows a sign-in
    form and signs in by WAMP-CRA; ``"user-ticket"`` (a front's ``--front-auth
    ticket``): the same form, the password sent as the WAMP ticket, followed by
    ``plain-ws`` if *plain_ws* (``--front-allow-plain-ws``: the page may send it
    over ``ws://`` to a host that is not loopback); ``ticket``: the service
    token; ``ticket anonymous``: no token needed.
    """
    if users == USERS_TICKET:
        return f"{USERS_TICKET} {PLAIN_WS}" if plain_ws else USERS_TICKET
    if users:
        return USERS_WAMPCRA
    return "ticket anonymous" if anonymous else "ticket"


def _secure_headers(request):
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"referrer-policy", b"no-referrer")


def render_shell(request, policy, static_dir, script, stylesheet, not_built, **fields):
    """A :data:`SHELL` page's body and headers, sent under *policy*, never cached or framed.

    *fields* fill the shell (``realm``, already escaped, ``auth``, ``router``,
    ``title``, ``loading``); the assets' version is *script*'s time in
    *static_dir*. Without *script* there, *not_built* with status 503.
    """
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"content-security-policy", policy.encode())
    request.setHeader(b"x-frame-options", b"DENY")
    _secure_headers(request)
    path = os.path.join(static_dir, script)
    if not os.path.exists(path):
        request.setResponseCode(503)
        return not_built
    return SHELL.format(script=script, stylesheet=stylesheet, version=int(os.stat(path).st_mtime),
                        **fields).encode()


class NotebookPage(Resource):
    """``/``: the notebook page, with the realm and authentication filled in."""

    isLeaf = True

    def __init__(self, realm, anonymous, static_dir=STATIC_DIR, users=False, router_url=None,
                 plain_ws=False):
        super().__init__()
        self.realm = realm
        self.auth = page_auth(anonymous, users, plain_ws)
        self.static_dir = static_dir
        self.router_url = router_url
        self.policy = content_security_policy(router_url)

    def render_GET(self, request):
        return render_shell(request, self.policy, self.static_dir, SCRIPT, STYLESHEET, _NOT_BUILT,
                            realm=html.escape(self.realm, quote=True), auth=self.auth,
                            router=router_meta(self.router_url), title="webkernel",
                            loading="notebook")


class StaticFiles(File):
    """``/static/``: the built assets; no directory listings; revalidated on every load."""

    contentTypes = {**File.contentTypes, ".js": "text/javascript; charset=utf-8",
                    ".css": "text/css; charset=utf-8", ".map": "application/json",
                    ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf",
                    ".txt": "text/plain; charset=utf-8"}

    def directoryListing(self):
        return notFound()

    def render_GET(self, request):
        _secure_headers(request)
        request.setHeader(b"cache-control", b"no-cache")
        return super().render_GET(request)


def static_resource(static_dir=STATIC_DIR):
    """The resource for ``/static/`` (a 404 for everything when the assets are not built)."""
    return StaticFiles(static_dir) if os.path.isdir(static_dir) else notFound()
