"""Scale-out: a kernel host in its own process joins a router running in another (--router)."""

import tempfile

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from tests.service import ServiceProcess
from tests.twisted_wamp import joined, leave

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

HOST_TOKEN = "host-secret-for-tests"


class RemoteKernelHostTests(TestCase):
    """`twistd webkernel --router ws://…` serves kernels through a router in another process."""

    timeout = 120

    @defer.inlineCallbacks
    def test_kernels_through_external_router(self):
        """A client of the router runs code in a kernel owned by the remote host."""
        router = ServiceProcess("--anonymous", "--no-kernels", "--host-token", HOST_TOKEN)
        self.addCleanup(router.stop)
        client = yield joined(router, realm="webkernel")
        registered = defer.Deferred()

        def on_create(session_id, registration):
            if registration["uri"] == "webkernel.kernels.start" and not registered.called:
                registered.callback(session_id)
        yield client.subscribe(on_create, "wamp.registration.on_create")
        host = ServiceProcess("--router", router.ws_url, "--token", HOST_TOKEN,
                              "--kernel-dir", tempfile.mkdtemp(prefix="webkernel-remote-"),
                              ready="kernel host joining")
        self.addCleanup(host.stop)
        host_session = yield registered.addTimeout(30, reactor)
        info = yield client.call("wamp.session.get", host_session)
        self.assertEqual((info["authid"], info["authrole"]), ("webkernel_host", "webkernel_host"))
        model = yield client.call("webkernel.kernels.start").addTimeout(60, reactor)
        self.assertEqual((yield client.call(f"webkernel.kernel.{model['id']}.eval_cell", "6*7")), "42")
        yield client.call(f"webkernel.kernel.{model['id']}.shutdown")
        yield leave(client)
        host.stop()  # twistd re-raises SIGTERM after a clean stop, so its status is -15
        self.assertIn("Server Shut Down", host.log())
        self.assertNotIn("Traceback", host.log())

    @defer.inlineCallbacks
    def test_wrong_host_token_is_refused(self):
        """A host with the wrong token cannot join; clients cannot claim the host's authid."""
        router = ServiceProcess("--token", "user-token", "--no-kernels", "--host-token", HOST_TOKEN)
        self.addCleanup(router.stop)
        host = ServiceProcess("--router", router.ws_url, "--token", "user-token",
                              "--kernel-dir", tempfile.mkdtemp(prefix="webkernel-remote-"),
                              ready="a kernel host must present the router's --host-token")
        self.addCleanup(host.stop)
        client = yield joined(router, realm="webkernel", ticket="user-token")
        error = yield self.assertFailure(client.call("webkernel.kernels.start"), ApplicationError)
        self.assertEqual(error.error, "wamp.error.no_such_procedure")
        yield leave(client)
