"""HTTP requests are refused at their headers: wrong Host, a body without the token or too large, headers too slow.

Each test plays the attack from issue 10 against the real site classes over an
in-memory transport, with a fake clock, scaled down.
"""

import io

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from broker.auth import KERNEL_HOST_ROLE, Principal
from broker.hosts import HostAllowList, host_name, listening_interfaces
from broker.http_guard import (
    BasicCredentials, GuardedSite, HttpLimits, peer_name, redact_token, request_token, sign_in,
)
from twisted.web.http_headers import Headers

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
TOKEN = "sekrit"
LIMIT = 1000


class Echo(Resource):
    """Answers with the size of the body it was given."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.bodies = []
        self.waiting = []

    def render_GET(self, request):
        if request.path == b"/slow":
            self.waiting.append(request)
            return NOT_DONE_YET
        return b"page"

    def render_POST(self, request):
        body = request.content.read()
        self.bodies.append(body)
        return b"got %d" % len(body)


class GuardedSiteTests(SynchronousTestCase):

    def setUp(self):
        self.clock = Clock()
        self.asked = []
        self.resource = Echo()
        self.site = GuardedSite(self.resource, HttpLimits(max_body=LIMIT, header_timeout=20),
                                self.admits, reactor=self.clock)
        self.site.startFactory()
        self.site.logFile = self.log = io.StringIO()
        self.addCleanup(self.site.stopFactory)

    def admits(self, token, peer):
        self.asked.append(peer)
        return token == TOKEN

    def connect(self):
        channel = self.site.buildProtocol(ADDRESS)
        transport = StringTransport(peerAddress=ADDRESS)
        channel.makeConnection(transport)
        return channel, transport

    def request(self, head, body=b""):
        channel, transport = self.connect()
        channel.dataReceived(head + b"\r\n\r\n" + body)
        return channel, transport

    def status(self, transport):
        return int(transport.value().split(b" ", 2)[1]) if transport.value() else None

    def closed(self, transport):
        return transport.disconnecting

    def test_chunked_body_without_token_is_refused_unread(self):
        """The /tmp-filling attack: a chunked POST without the token is 401 at its headers, its body never stored."""
        channel, transport = self.request(
            b"POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked",
            b"100000\r\n" + b"x" * 4096)
        self.assertEqual(self.status(transport), 401)
        self.assertIn(b'"code": -32001', transport.value())
        self.assertIn(b'WWW-Authenticate: Basic realm="webkernel"', transport.value())
        self.assertTrue(self.closed(transport))
        self.assertIsNone(channel.requests[-1].content)   # no temporary file, no buffer
        channel.dataReceived(b"x" * 100000)               # the rest is dropped
        self.assertEqual(self.resource.bodies, [])

    def test_length_without_token_is_refused(self):
        """A Content-Length body with a wrong token is 401 before it is read."""
        channel, transport = self.request(
            b"POST /jsonrpc?token=wrong HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10")
        self.assertEqual(self.status(transport), 401)
        self.assertIsNone(channel.requests[-1].content)

    def test_oversized_length_is_refused_before_reading(self):
        """Content-Length over the limit is 413 at the headers, even with the token."""
        channel, transport = self.request(
            b"POST /jsonrpc?token=sekrit HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d"
            % (LIMIT + 1))
        self.assertEqual(self.status(transport), 413)
        self.assertTrue(self.closed(transport))
        self.assertIsNone(channel.requests[-1].content)

    def test_oversized_chunked_body_is_refused_at_the_limit(self):
        """A chunked body with the token is 413 as soon as its running total passes the limit."""
        channel, transport = self.request(
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: token sekrit\r\n"
            b"Transfer-Encoding: chunked", b"200\r\n" + b"x" * 0x200 + b"\r\n")
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"200\r\n" + b"x" * 0x200 + b"\r\n")
        self.assertEqual(self.status(transport), 413)
        self.assertLessEqual(channel.requests[-1].content.tell(), LIMIT)
        channel.dataReceived(b"0\r\n\r\n")
        self.assertEqual(self.resource.bodies, [])

    def test_body_with_token_within_limit_is_served(self):
        """The token (query or header) and a body within the limit reach the resource."""
        for auth in (b"?token=sekrit HTTP/1.1\r\n", b" HTTP/1.1\r\nAuthorization: token sekrit\r\n"):
            _, transport = self.request(b"POST /jsonrpc" + auth + b"Host: localhost\r\n"
                                        b"Content-Length: 5", b"hello")
            self.assertEqual(self.status(transport), 200)
        self.assertEqual(self.resource.bodies, [b"hello", b"hello"])
        self.assertEqual(self.asked, ["tcp4:127.0.0.1:40000"] * 2)   # who asks, for throttling

    def test_anonymous_service_takes_bodies_without_token(self):
        """With --anonymous a body needs no token (the size limit still holds)."""
        self.site.body_allowed = lambda token, peer: True
        _, transport = self.request(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2",
                                    b"{}")
        self.assertEqual(self.status(transport), 200)

    def test_foreign_host_is_refused(self):
        """DNS rebinding: Host attacker.invalid is 421 on every path, the WebSocket handshake included."""
        for path in (b"/", b"/ws", b"/jsonrpc"):
            channel, transport = self.request(
                b"GET " + path + b" HTTP/1.1\r\nHost: attacker.invalid:8080\r\n"
                b"Origin: http://attacker.invalid:8080\r\nUpgrade: websocket\r\nConnection: Upgrade")
            self.assertEqual(self.status(transport), 421)
            self.assertIn(b"--allowed-host", transport.value())
            self.assertTrue(self.closed(transport))

    def test_off_loopback_a_page_is_checked_and_a_client_is_not(self):
        """Listening on every interface: a request with Origin naming a foreign host is 421, one without is served."""
        self.site.limits = HttpLimits(hosts=HostAllowList((), {""}))
        head = b"GET / HTTP/1.1\r\nHost: rebound.invalid:8080"
        _, transport = self.request(head + b"\r\nOrigin: http://rebound.invalid:8080")
        self.assertEqual(self.status(transport), 421)
        _, transport = self.request(head)
        self.assertEqual(self.status(transport), 200)

    def test_own_hosts_are_served(self):
        """localhost, 127.0.0.1 and [::1], with or without a port, and no Host at all, are served."""
        for host in (b"Host: localhost:8080\r\n", b"Host: 127.0.0.1\r\n", b"Host: [::1]:80\r\n", b""):
            _, transport = self.request(b"GET / HTTP/1.1\r\n" + host + b"X: y")
            self.assertEqual(self.status(transport), 200, host)

    def test_slow_headers_are_cut_at_the_deadline(self):
        """Slowloris: a header line every 15 s does not keep the connection past header_timeout."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        self.clock.advance(15)
        channel.dataReceived(b"X-a: b\r\n")
        self.assertFalse(self.closed(transport))
        self.clock.advance(5)
        self.assertEqual(self.status(transport), 408)
        self.assertTrue(self.closed(transport))

    def test_each_request_of_a_kept_alive_connection_has_the_deadline(self):
        """After a response, the next request's line and headers have header_timeout from it."""
        channel, transport = self.connect()
        self.clock.advance(10)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual(self.status(transport), 200)
        self.clock.advance(19)
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        self.assertFalse(self.closed(transport))
        self.clock.advance(1)
        self.assertTrue(self.closed(transport))
        self.assertIn(b"HTTP/1.1 408 Request Timeout", transport.value())

    def test_an_idle_kept_alive_connection_is_closed_without_an_answer(self):
        """No byte of a next request by the deadline: closed with no 408, which a client would take for its next answer."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answered = transport.value()
        self.clock.advance(20)
        self.assertTrue(self.closed(transport))
        self.assertEqual(transport.value(), answered)

    def test_a_silent_new_connection_is_closed_without_an_answer(self):
        """A connection that sends nothing by the deadline is closed; there is no request to answer."""
        channel, transport = self.connect()
        self.clock.advance(20)
        self.assertTrue(self.closed(transport))
        self.assertEqual(transport.value(), b"")

    def test_a_pipelined_request_being_answered_is_not_cut(self):
        """Two slow requests in one packet: the second, taken up when the first is answered, is not cut as slow headers."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n"
                             b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.resource.waiting[0].finish()
        self.assertEqual(len(self.resource.waiting), 2)
        self.clock.advance(100)
        self.assertFalse(self.closed(transport))
        self.resource.waiting[1].write(b"done")
        self.resource.waiting[1].finish()
        self.assertTrue(transport.value().endswith(b"done\r\n0\r\n\r\n"))

    def test_access_log_has_no_token(self):
        """The access log line of /jsonrpc?token=… shows the path but not the token."""
        self.request(b"GET /jsonrpc?token=sekrit&x=1 HTTP/1.1\r\nHost: localhost\r\n"
                     b"Referer: http://localhost/?token=sekrit")
        line = self.log.getvalue()
        self.assertIn("/jsonrpc?token=<redacted>&x=1", line)
        self.assertIn("http://localhost/?token=<redacted>", line)
        self.assertNotIn("sekrit", line)


class TokenTests(SynchronousTestCase):

    def test_request_token(self):
        """The token is read from Authorization first, then the query."""
        self.assertEqual(request_token(b"/j?token=a", Headers()), "a")
        self.assertEqual(request_token(b"/j?token=a", Headers({b"authorization": [b"token b"]})), "b")
        self.assertIsNone(request_token(b"/j?x=1", Headers()))

    def test_redact_token(self):
        """Every token parameter is redacted, and only its value."""
        self.assertEqual(redact_token(b"/j?a=1&TOKEN=x&b=2#f"), b"/j?a=1&TOKEN=<redacted>&b=2#f")
        self.assertEqual(redact_token(b"/j?tokens=x"), b"/j?tokens=x")

    def test_peer_name(self):
        """Peers are named as Autobahn names WAMP peers."""
        self.assertEqual(peer_name(ADDRESS), "tcp4:127.0.0.1:40000")


class HostAllowListTests(SynchronousTestCase):

    def test_host_name(self):
        """Port and IPv6 brackets are dropped, case folded."""
        self.assertEqual([host_name(h) for h in ("LocalHost:80", "[::1]:8080", "[::1]", "a.b")],
                         ["localhost", "::1", "::1", "a.b"])

    def test_loopback_only_by_default(self):
        """Loopback names and addresses pass; other names and addresses do not."""
        hosts = HostAllowList()
        for host in ("localhost", "127.0.0.1:1", "127.1.2.3", "[::1]:80", ""):
            self.assertTrue(hosts.allows(host), host)
        for host in ("attacker.invalid", "localhost.attacker.invalid", "10.0.0.5", "[fe80::1]"):
            self.assertFalse(hosts.allows(host), host)

    def test_listening_address_and_allowed_names(self):
        """The listening address and --allowed-host names pass; * passes everything."""
        hosts = HostAllowList(["Notebook.Example"], {"10.0.0.5"})
        self.assertTrue(hosts.allows("10.0.0.5:8080"))
        self.assertTrue(hosts.allows("notebook.example"))
        self.assertFalse(hosts.allows("10.0.0.6"))
        self.assertTrue(HostAllowList(["*"]).allows("anything.invalid"))

    def test_every_interface_allows_any_address_but_not_any_name(self):
        """Listening on 0.0.0.0 serves any IP address in Host, still no foreign name."""
        hosts = HostAllowList((), listening_interfaces(["tcp:8080"]))
        self.assertTrue(hosts.allows("192.168.1.20:8080"))
        self.assertFalse(hosts.allows("attacker.invalid"))

    def test_requests_without_origin_are_checked_on_loopback_only(self):
        """Off loopback, a client that is no page (no Origin) may use any name; a page may not."""
        everywhere = HostAllowList((), {""})
        self.assertTrue(everywhere.allows("router", from_page=False))
        self.assertFalse(everywhere.allows("router", from_page=True))
        self.assertFalse(HostAllowList().allows("router", from_page=False))
        self.assertFalse(HostAllowList((), set()).allows("router", from_page=False))  # unix:

    def test_listening_interfaces(self):
        """interface= of TCP endpoints, the wildcard when absent; Unix sockets have none."""
        self.assertEqual(
            listening_interfaces(["tcp:8080:interface=10.0.0.5", "tcp6:80:interface=\\:\\:1",
                                  "tcp:1", "unix:/tmp/s"]),
            {"10.0.0.5", "::1", ""})


class SignInTests(SynchronousTestCase):
    """sign_in: the one rule by which JSON-RPC and the gateway API turn HTTP credentials into a principal."""

    def authenticate(self, authmethod, authid, secret, peer):
        self.asked.append((authmethod, authid, secret, peer))
        return self.answer

    def setUp(self):
        self.asked, self.answer = [], Principal("alice", "student", "ticket")

    def sign_in(self, credentials):
        return sign_in(self.authenticate, credentials, "tcp4:127.0.0.1:1", "svc", "svc-anonymous")

    def test_each_kind_of_credentials(self):
        """A user and password is a ticket of that user, a token the service's authid, none anonymous."""
        self.sign_in(BasicCredentials("alice", "pw"))
        self.sign_in("TOKEN")
        self.sign_in(None)
        self.assertEqual([a[:3] for a in self.asked], [("ticket", "alice", "pw"), ("ticket", "svc", "TOKEN"),
                                                       ("anonymous", "svc-anonymous", None)])

    def test_a_password_never_signs_in_as_the_kernel_host(self):
        """Basic credentials that the authenticators accept for the kernel host's role are refused."""
        self.answer = Principal("webkernel_host", KERNEL_HOST_ROLE, "ticket")
        self.assertIsNone(self.sign_in(BasicCredentials("webkernel_host", "host secret")))
        self.answer = None
        self.assertIsNone(self.sign_in(BasicCredentials("alice", "wrong")))
