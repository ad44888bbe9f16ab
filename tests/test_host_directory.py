"""HostDirectory: what a host of a cluster knows of the other hosts' kernels."""

from twisted.trial.unittest import SynchronousTestCase

from broker.kernel.directory import HostDirectory


def model(kernel_id):
    return {"id": kernel_id, "execution_state": "idle"}


class HostDirectoryTests(SynchronousTestCase):
    """Kernels by host, as the hosts' events tell."""

    def test_a_kernel_has_the_host_that_last_spoke_of_it(self):
        """A host that reconnects (new session id) and announces its kernel again takes it from its old session."""
        directory = HostDirectory()
        directory.learn(1, "started", model("k"))
        directory.learn(2, "ready", model("k"))
        self.assertEqual(directory.kernels_of(1), [])
        self.assertEqual(directory.kernels_of(2), [model("k")])

    def test_stopped_and_dead_kernels_are_nobodys(self):
        """A kernel stopped or dead is no orphan when its host leaves."""
        directory = HostDirectory()
        for kernel_id, event in (("a", "stopped"), ("b", "dead"), ("c", "ready")):
            directory.learn(1, "started", model(kernel_id))
            directory.learn(1, event, model(kernel_id))
        self.assertEqual(directory.kernels_of(1), [model("c")])

    def test_forget_returns_only_kernels_not_claimed_since(self):
        """After a host leaves, only its kernels no other session claimed during the grace period are orphans."""
        directory = HostDirectory()
        directory.learn(1, "ready", model("a"))
        directory.learn(1, "ready", model("b"))
        directory.learn(3, "ready", model("b"))  # came back under session 3
        self.assertEqual(directory.forget(1, ["a", "b"]), [model("a")])
        self.assertEqual(directory.kernels_of(1), [])
        self.assertEqual(directory.kernels_of(3), [model("b")])
