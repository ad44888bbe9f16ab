"""The built-in authenticators pick authids that are never reused, not even after a restart."""

import subprocess
import sys

import pytest
from autobahn.wamp import message
from twisted.trial.unittest import SynchronousTestCase

from broker.testing import MemoryRouter
from tests.test_router_core import only

# what a fresh service start picks for its first ticket and anonymous sessions
FIRST_PICKS = """
from plugins.webkernel_authenticators import AnonymousAuthenticator, TicketAuthenticator
ticket = TicketAuthenticator("t")
ticket.hello("webkernel", {})
print(ticket.authenticate("t", {}).authid, AnonymousAuthenticator().hello("webkernel", {}).authid)
"""


def picked(router, **join):
    """The authid the router gives a session that asks for none."""
    client = router.client().join(**join)
    if join.get("authmethods") == ["ticket"]:
        client.take()
        client.send(message.Authenticate("s3cret"))
    return only(client.take(), message.Welcome).authid


class PickedAuthidTests(SynchronousTestCase):
    """Sessions that ask for no authid get a random one."""

    def test_each_session_gets_its_own(self):
        """Many ticket and anonymous sessions: every picked authid is distinct and says its kind."""
        ticketed = [picked(MemoryRouter(token="s3cret", anonymous=False), authmethods=["ticket"])
                    for _ in range(50)]
        anonymous = [picked(MemoryRouter()) for _ in range(50)]
        self.assertEqual(len(set(ticketed + anonymous)), 100)
        self.assertTrue(all(a.startswith("user-") for a in ticketed))
        self.assertTrue(all(a.startswith("anonymous-") for a in anonymous))


@pytest.mark.integration
class RestartTests(SynchronousTestCase):
    """A restarted service does not hand out the authids of the one before."""

    def test_two_service_starts_pick_different_authids(self):
        """Two fresh processes (two service starts) pick different first authids for both methods."""
        first, second = (subprocess.run([sys.executable, "-c", FIRST_PICKS], check=True,
                                        capture_output=True, text=True).stdout.split()
                         for _ in range(2))
        self.assertEqual(len(first), 2)
        self.assertNotEqual(first[0], second[0])
        self.assertNotEqual(first[1], second[1])
