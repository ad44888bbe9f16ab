"""How broker.client answers a router's sign-in challenge: WAMP-CRA, or the password as ticket only where it stays encrypted or local."""

from autobahn.wamp import types
from twisted.trial.unittest import SynchronousTestCase

from broker.cleartext import sends_in_clear
from broker.client import NotAuthorized
from broker.client.session import PASSWORD_IN_CLEAR, ClientSession, wampcra_signature


def session(**kwargs):
    made = ClientSession(types.ComponentConfig(realm="webkernel"), **kwargs)
    made.joins = []
    made.join = lambda realm, **options: made.joins.append(options)
    return made


class ChallengeTests(SynchronousTestCase):

    def test_a_password_offers_wampcra_first_then_ticket(self):
        """A router that speaks WAMP-CRA picks it (the password never sent); one that only takes tickets can still sign the user in."""
        client = session(authid="alice", password="pw")
        client.onConnect()
        self.assertEqual(client.joins[0]["authmethods"], ["wampcra", "ticket"])

    def test_wampcra_is_answered_with_the_signature_not_the_password(self):
        """A WAMP-CRA challenge gets the salted signature."""
        extra = {"challenge": "c", "salt": "s", "iterations": 10, "keylen": 32}
        answer = session(password="pw").onChallenge(types.Challenge("wampcra", extra))
        self.assertEqual(answer, wampcra_signature("pw", extra))
        self.assertNotIn("pw", answer)

    def test_a_ticket_challenge_gets_the_password_over_tls_or_loopback(self):
        """Crossbar.io's ticket sign-in gets the password when the connection is wss:// or local."""
        answer = session(password="pw", ticket_in_clear=False).onChallenge(
            types.Challenge("ticket", {}))
        self.assertEqual(answer, "pw")

    def test_a_ticket_challenge_over_plain_ws_to_another_host_is_refused(self):
        """The password is not sent in clear across a network: NotAuthorized says to use wss://."""
        client = session(password="pw", ticket_in_clear=True)
        refused = self.assertRaises(NotAuthorized, client.onChallenge, types.Challenge("ticket", {}))
        self.assertIn("wss://", str(refused))
        self.assertEqual(str(refused), PASSWORD_IN_CLEAR)

    def test_the_refusal_reaches_the_join_as_not_authorized(self):
        """Autobahn aborts with wamp.error.cannot_authenticate when onChallenge refuses: the caller gets NotAuthorized, not ConnectionFailed."""
        client = session(password="pw", ticket_in_clear=True)
        client.onLeave(types.CloseDetails("wamp.error.cannot_authenticate", PASSWORD_IN_CLEAR))
        failure = self.failureResultOf(client.joined, NotAuthorized)
        self.assertIn("wss://", str(failure.value))

    def test_which_urls_send_a_ticket_in_clear(self):
        """Only plain ws:// to a host that is not loopback counts as in clear (the client asks this of its URL)."""
        self.assertTrue(sends_in_clear("ws://classroom.example:8080/ws"))
        self.assertTrue(sends_in_clear("ws://10.0.0.5/ws"))
        for url in ("wss://classroom.example/ws", "ws://127.0.0.1:8080/ws", "ws://localhost/ws",
                    "ws://[::1]:8080/ws"):
            self.assertFalse(sends_in_clear(url), url)
