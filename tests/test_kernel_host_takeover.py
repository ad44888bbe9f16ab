"""A host's kernels outlive its WAMP session: the next session takes them over (KernelHost.take_over)."""

from autobahn.wamp import types

from broker import errors
from broker.auth import KERNEL_HOST_ROLE, Principal
from broker.kernel import uris
from broker.kernel.host import KernelHost
from broker.router.local import attach
from tests.test_kernel_host_units import KernelHostTestCase


class TakeOverTests(KernelHostTestCase):
    """A new session of the host, after the router lost the old one."""

    def rejoin(self):
        """The old session leaves; a new one takes its kernels over and joins."""
        old = self.host
        self.host = KernelHost(types.ComponentConfig(realm="webkernel"), self.launcher,
                               self.channels, self.clock, max_kernels=self.max_kernels)
        self.host.take_over(old)
        old.leave()
        self.settle()
        attach(self.memory.router, self.host, Principal("host", KERNEL_HOST_ROLE, "local"),
               self.clock)
        self.settle()
        return old

    def test_kernels_are_registered_again_with_their_ids(self):
        """After a new session, the kernel is listed, its calls reach it, and its shutdown works."""
        kernel_id = self.start()["id"]
        old = self.rejoin()
        self.assertEqual(old.kernels, {})
        self.assertEqual([k["id"] for k in self.result(uris.KERNELS_LIST)], [kernel_id])
        unknown = self.error(uris.kernel_procedure(kernel_id, "no_such_thing"))
        self.assertEqual(unknown.error, errors.NO_SUCH_PROCEDURE)  # its own host answers
        self.shut_down(kernel_id)

    def test_output_goes_out_through_the_new_session(self):
        """A kernel's output after the rejoin is published by the new session, into the same history."""
        kernel_id = self.start()["id"]
        self.rejoin()
        kernel = self.host.kernels[kernel_id]
        published = []
        self.host._publish_output = lambda kid, sub, output: published.append((kid, sub))
        kernel.conversation.lifecycle_status("restarting")
        self.assertEqual(published, [(kernel_id, "iopub.status")])
