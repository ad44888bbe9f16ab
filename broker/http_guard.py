"""HTTP requests checked before they cost anything: Host, body size, token, header deadline.

:class:`GuardedSite` is the service's Twisted Web site. Its channel
(:class:`GuardedChannel`) decides as soon as a request's headers are in,
before a byte of its body is read (Twisted would otherwise spool the body to
a temporary file, whatever its size, before any resource could refuse it):

* a ``Host`` the service does not serve is HTTP 421 (DNS rebinding, see
  :mod:`broker.hosts`), on every path, the WebSocket handshake included;
* a body (``Content-Length`` above 0, or chunked) without the service token
  is HTTP 401, unless the service runs ``--anonymous``;
* a ``Content-Length`` over ``max_body`` is HTTP 413, and so is a chunked
  body as soon as its running total passes it;
* the request line and headers must all arrive within ``header_timeout``
  seconds of the connection's first byte or of the previous response, or the
  connection is answered 408 and closed (one header line every few seconds
  no longer keeps a connection forever). A kept-alive connection on which no
  byte of a next request came in that time is closed without an answer: a
  408 there would be read by the client as the answer to the request it
  sends next.

Each refusal closes the connection (``Connection: close``): the rest of the
request is never stored (it is read and dropped for ``LINGER_SECONDS`` at most,
so that a client still sending can read the answer). The access log never shows the token: ``token=…`` in
the request's URI and ``Referer`` is written ``token=<redacted>``.
"""

import base64
import binascii
import json
import re
from urllib.parse import parse_qs, urlsplit

import attr
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.web.http import HTTPChannel, combinedLogFormatter
from twisted.web.server import Request, Site

from broker.auth import KERNEL_HOST_ROLE
from broker.hosts import HostAllowList

DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_HEADER_TIMEOUT = 20.0
#: seconds a refused request's remaining bytes are read (and dropped) before closing
LINGER_SECONDS = 5.0
#: JSON-RPC's codes for the refusals a JSON-RPC client may meet (the only
#: endpoint that takes a body is ``/jsonrpc``)
_NOT_AUTHORIZED = -32001
_INVALID_REQUEST = -32600

_log = Logger()
#: what a request that may not send a body (JSON-RPC without credentials) is told
NOT_SIGNED_IN = ("give the service token: ?token=… or 'Authorization: token …' (the token is "
                 "in the URL the service logged at start); on a multi-user service (--users), "
                 "your user name and password with HTTP Basic (http://NAME:PASSWORD@HOST/jsonrpc)")


@attr.s(frozen=True)
class HttpLimits:
    """What every HTTP request must keep to (see the module docstring)."""

    max_body = attr.ib(default=DEFAULT_MAX_BODY)
    header_timeout = attr.ib(default=DEFAULT_HEADER_TIMEOUT)
    hosts = attr.ib(default=HostAllowList())


def peer_name(address):
    """An address as Autobahn names a WAMP peer (``tcp4:127.0.0.1:40312``)."""
    kind = {IPv4Address: "tcp4", IPv6Address: "tcp6"}.get(type(address))
    return f"{kind}:{address.host}:{address.port}" if kind else str(address)


def request_token(path, headers):
    """The token a request carries: ``Authorization: token …`` or ``?token=…`` in *path*, or None."""
    for header in headers.getRawHeaders(b"authorization") or ():
        scheme, _, value = header.decode("latin-1").partition(" ")
        if scheme.lower() == "token" and value.strip():
            return value.strip()
    values = parse_qs(urlsplit(path).query).get(b"token")
    return values[0].decode("utf-8", "replace") if values else None


@attr.s(frozen=True, repr=False)
class BasicCredentials:
    """A user name and password from ``Authorization: Basic …`` (multi-user mode's JSON-RPC)."""

    user = attr.ib()
    password = attr.ib()

    def __repr__(self):
        return f"BasicCredentials(user={self.user!r}, password=<hidden>)"


def basic_credentials(header):
    """The :class:`BasicCredentials` of one ``Authorization`` header value (str), or None."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return BasicCredentials(user, password) if colon else None


def request_credentials(path, headers):
    """What a request signs in with: :class:`BasicCredentials`, else its token (str), else None."""
    for header in headers.getRawHeaders(b"authorization") or ():
        basic = basic_credentials(header.decode("latin-1"))
        if basic is not None:
            return basic
    return request_token(path, headers)


def sign_in(authenticate, credentials, peer, token_authid, anonymous_authid):
    """Who an HTTP request with *credentials* (:func:`request_credentials`) from *peer* is, or None.

    *authenticate* ``(authmethod, authid, secret, peer)`` is the router's, bound
    to the realm: a user and password sign in as a ticket (never as the kernel
    host, whatever its ticket: an HTTP client only calls), a token as
    *token_authid*, no credentials as *anonymous_authid* (where the service
    allows anonymous sessions).
    """
    if isinstance(credentials, BasicCredentials):
        principal = authenticate("ticket", credentials.user, credentials.password, peer)
        return None if principal is None or principal.authrole == KERNEL_HOST_ROLE else principal
    if credentials is not None:
        return authenticate("ticket", token_authid, credentials, peer)
    return authenticate("anonymous", anonymous_authid, None, peer)


_TOKEN_IN_URI = re.compile(rb"([?&;]token=)[^&;#\s]*", re.IGNORECASE)


def redact_token(uri):
    """*uri* (bytes) with the value of every ``token`` query parameter replaced by ``<redacted>``."""
    return _TOKEN_IN_URI.sub(rb"\1<redacted>", uri)


class _RedactedRequest:
    """A request as the access log sees it: the token redacted from its URI and Referer."""

    def __init__(self, request):
        self._request = request
        self.uri = redact_token(request.uri)

    def __getattr__(self, name):
        return getattr(self._request, name)

    def getHeader(self, name):
        value = self._request.getHeader(name)
        if value is not None and name.lower() in (b"referer", "referer"):
            redacted = redact_token(value.encode("latin-1") if isinstance(value, str) else value)
            return redacted if isinstance(value, bytes) else redacted.decode("latin-1")
        return value


def redacted_log_formatter(timestamp, request):
    """Twisted's combined log format, without tokens."""
    return combinedLogFormatter(timestamp, _RedactedRequest(request))


class GuardedRequest(Request):
    """Counts the body as it comes and refuses it past the limit (chunked bodies included)."""

    body_received = 0

    def handleContentChunk(self, data):
        self.body_received += len(data)
        limit = self.channel.site.limits.max_body
        if self.body_received > limit:
            return self.channel.refuse(413, b"Content Too Large", _INVALID_REQUEST,
                                       f"the request body is larger than {limit} bytes")
        super().handleContentChunk(data)


class GuardedChannel(HTTPChannel):
    """An HTTP channel that checks each request at its headers (see the module docstring)."""

    _header_deadline = None
    _refused = False
    _linger = None
    #: whether a byte of the request the deadline runs for has come in
    _request_begun = False

    def connectionMade(self):
        super().connectionMade()
        self._arm_header_deadline()

    def _arm_header_deadline(self):
        self._cancel_header_deadline()
        self._request_begun = False
        self._header_deadline = self.callLater(self.site.limits.header_timeout, self._headers_late)

    def _cancel_header_deadline(self):
        if self._header_deadline is not None and self._header_deadline.active():
            self._header_deadline.cancel()
        self._header_deadline = None

    def _headers_late(self):
        self._header_deadline = None
        if self.transport is None:   # taken over (WebSocket)
            return
        if not self._request_begun:
            _log.debug("closing an idle kept-alive connection from {peer}",
                       peer=peer_name(self.transport.getPeer()))
            return self.loseConnection()
        self.refuse(408, b"Request Timeout", None,
                    f"the request line and headers must arrive within "
                    f"{self.site.limits.header_timeout:g} s")

    def allHeadersReceived(self):
        self._cancel_header_deadline()
        refusal = self.site.refusal(self._path, self.requests[-1].requestHeaders, self.length,
                                    peer_name(self.transport.getPeer()))
        if refusal is not None:
            return self.refuse(*refusal)
        super().allHeadersReceived()

    def allContentReceived(self):
        if not self._refused:
            super().allContentReceived()

    def dataReceived(self, data):
        if data:
            self._request_begun = True
        super().dataReceived(data)

    def lineReceived(self, line):
        if not self._refused:
            super().lineReceived(line)

    def rawDataReceived(self, data):
        if not self._refused:
            super().rawDataReceived(data)

    def requestDone(self, request):
        # armed before Twisted replays a pipelined request it buffered meanwhile,
        # whose complete headers then cancel it
        if self.persistent and self.transport is not None and not self._refused:
            self._arm_header_deadline()
        super().requestDone(request)

    def refuse(self, status, phrase, code, message):
        """Answer *status* with *message* (a JSON-RPC error with *code* if given) and close."""
        if self._refused:
            return
        self._refused = True
        _log.info("refused an HTTP request from {peer} ({status}): {message}",
                  peer=peer_name(self.transport.getPeer()), status=status, message=message)
        self.length = None   # so that the line parser does not dispatch the request
        self.setRawMode()    # and buffers no more lines: what comes is dropped
        self._cancel_header_deadline()
        if code is None:
            kind, body = b"text/plain; charset=utf-8", message.encode("utf-8") + b"\n"
        else:
            kind = b"application/json; charset=utf-8"
            body = json.dumps({"jsonrpc": "2.0", "id": None,
                               "error": {"code": code, "message": message}}).encode("utf-8")
        head = [b"HTTP/1.1 %d %s" % (status, phrase), b"Content-Type: " + kind,
                b"Content-Length: %d" % len(body), b"Connection: close",
                b"Cache-Control: no-store", b"X-Content-Type-Options: nosniff"]
        if status == 401:   # the challenges JSON-RPC answers with itself
            head += [b"WWW-Authenticate: token", b'WWW-Authenticate: Basic realm="webkernel"']
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        half_close = getattr(self.transport, "loseWriteConnection", None)
        if half_close is None:
            return self.loseConnection()
        # a client still sending its body reads the answer only once it has sent
        # it all: read and discard what comes for a while (never store it) so
        # that closing does not reset the connection under the answer
        half_close()
        self._linger = self.callLater(LINGER_SECONDS, self.transport.abortConnection)

    def connectionLost(self, reason):
        self._cancel_header_deadline()
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)


class GuardedSite(Site):
    """The service's site: :class:`GuardedChannel` and :class:`GuardedRequest`, a token-free access log.

    *body_allowed* ``(credentials, peer)`` decides who may send a body, from the
    request's credentials (:func:`request_credentials`: a token, a user and
    password, or None) and its peer (``tcp4:ADDRESS:PORT``); by
    default anyone. The service gives the JSON-RPC resource's own check
    (:meth:`~broker.jsonrpc.resource.JsonRpcResource.admits`), the only
    resource that takes a body.
    """

    protocol = GuardedChannel
    requestFactory = GuardedRequest

    def __init__(self, resource, limits=None, body_allowed=None, **kwargs):
        kwargs.setdefault("logFormatter", redacted_log_formatter)
        super().__init__(resource, **kwargs)
        self.limits = limits or HttpLimits()
        self.body_allowed = body_allowed or (lambda token, peer: True)

    def refusal(self, path, headers, length, peer):
        """``(status, phrase, code, message)`` if a request with these headers is refused, else None."""
        hosts = headers.getRawHeaders(b"host") or [b""]
        from_page = headers.hasHeader(b"origin")
        if len(hosts) > 1 or not self.limits.hosts.allows(hosts[0].decode("latin-1"), from_page):
            return (421, b"Misdirected Request", None,
                    f"this service does not serve the host {hosts[-1][:100].decode('latin-1')!r}; "
                    f"start it with --allowed-host NAME to serve that name")
        if length == 0:
            return None
        if not self.body_allowed(request_credentials(path, headers), peer):
            return (401, b"Unauthorized", _NOT_AUTHORIZED, NOT_SIGNED_IN)
        if length is not None and length > self.limits.max_body:
            return (413, b"Content Too Large", _INVALID_REQUEST,
                    f"the request body is larger than {self.limits.max_body} bytes")
        return None
