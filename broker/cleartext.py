"""Whether a WebSocket URL would carry a password across a network unencrypted.

A password sent as a WAMP ticket (to a router that signs users in by ticket,
such as a classroom Crossbar.io: see ``docs/scaling.md``) is readable on the
wire unless the connection is ``wss://`` or stays on this machine. The front
(:mod:`broker.web`), the page (``web/src/signin.js``, the same rule) and the
Python client (:mod:`broker.client.session`) all ask this before sending one.
"""

import ipaddress
from urllib.parse import urlsplit


def sends_in_clear(url):
    """True if *url* is plain ``ws://`` to a host that is not loopback (so a ticket would cross a network unencrypted).

    The page makes the same check (``web/src/signin.js``) before it sends a password.
    """
    parts = urlsplit(url)
    if parts.scheme != "ws":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
