"""The ``/jsonrpc`` resource's wiring: who a request is, decided by the router's authenticators."""

import functools

from twisted.internet.address import IPv4Address
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from broker.auth import Principal
from broker.jsonrpc.resource import JsonRpcResource
from broker.testing import MemoryRouter


def request(token=None, header=None):
    r = DummyRequest([b""])
    r.client = IPv4Address("TCP", "192.168.1.1", 1234)
    if token is not None:
        r.args[b"token"] = [token.encode()]
    if header is not None:
        r.requestHeaders.setRawHeaders(b"authorization", [header])
    return r


def resource(memory):
    authenticate = functools.partial(memory.router.authenticate, memory.realm.name)
    return JsonRpcResource(memory.attach, authenticate, memory.realm.name, memory.clock)


class PrincipalTests(SynchronousTestCase):
    """The resource repeats no token check: the authenticators sessions meet decide."""

    def test_token_is_a_ticket(self):
        """The service token (query or header) is the jsonrpc user; a wrong one or none is nobody."""
        jsonrpc = resource(MemoryRouter(token="secret", anonymous=False))
        user = Principal("jsonrpc", "user", "ticket")
        self.assertEqual(jsonrpc.principal(request(token="secret")), user)
        self.assertEqual(jsonrpc.principal(request(header="token secret")), user)
        self.assertIsNone(jsonrpc.principal(request(token="wrong")))
        self.assertIsNone(jsonrpc.principal(request()))

    def test_anonymous_where_the_realm_is_open(self):
        """With --anonymous a request without a token is jsonrpc-anonymous; a wrong token is still nobody."""
        jsonrpc = resource(MemoryRouter(token="secret", anonymous=True))
        self.assertEqual(jsonrpc.principal(request()),
                         Principal("jsonrpc-anonymous", "anonymous", "anonymous"))
        self.assertIsNone(jsonrpc.principal(request(token="wrong")))

    def test_asks_the_authenticate_function(self):
        """The resource knows no token: it passes what it got to the function the wiring gave it."""
        asked = []
        jsonrpc = JsonRpcResource(None, lambda *a: asked.append(a), "webkernel", None)
        jsonrpc.principal(request(token="t"))
        jsonrpc.principal(request())
        peer = "tcp4:192.168.1.1:1234"  # the request's client, for per-address throttles
        self.assertEqual(asked, [("ticket", "jsonrpc", "t", peer),
                                 ("anonymous", "jsonrpc-anonymous", None, peer)])

    def test_admits_is_the_same_decision(self):
        """The site's body gate (admits, asked at the headers) decides as principal does."""
        jsonrpc = resource(MemoryRouter(token="secret", anonymous=False))
        self.assertTrue(jsonrpc.admits("secret", "tcp4:127.0.0.1:1"))
        self.assertFalse(jsonrpc.admits("wrong", "tcp4:127.0.0.1:1"))
        self.assertFalse(jsonrpc.admits(None, "tcp4:127.0.0.1:1"))
        self.assertTrue(resource(MemoryRouter(token="secret", anonymous=True)).admits(None, "p"))
