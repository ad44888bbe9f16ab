"""Holding many kernels: room in RLIMIT_NOFILE and in the ZeroMQ context, or a clear refusal at start-up."""

import resource

from twisted.internet import reactor
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker.connection_limits import FDS_PER_KERNEL
from broker.kernel.capacity import (
    TooFewDescriptors, descriptors_needed, most_kernels, raise_descriptor_limit,
)
from broker.kernel.zmq_channels import (
    SOCKETS_PER_KERNEL, KernelChannels, make_zmq_factory, session_for, socket_limit,
)
from broker.tap import Options

NOFILE = resource.RLIMIT_NOFILE


class FakeLimits:
    """getrlimit/setrlimit of RLIMIT_NOFILE on a (soft, hard) pair."""

    def __init__(self, soft, hard):
        self.value = (soft, hard)
        self.set = []

    def getrlimit(self, which):
        assert which == NOFILE
        return self.value

    def setrlimit(self, which, value):
        assert which == NOFILE
        self.set.append(value)
        self.value = value


class DescriptorLimitTests(SynchronousTestCase):
    """The soft RLIMIT_NOFILE is raised for the kernels; a hard limit too low is refused with what to do."""

    def test_a_low_soft_limit_is_raised_to_the_hard_one(self):
        """1,000 kernels under the common soft limit of 1024: it is raised to the hard limit."""
        limits = FakeLimits(1024, 20000)
        self.assertEqual(raise_descriptor_limit(1000, limits.getrlimit, limits.setrlimit),
                         (1024, 20000))
        self.assertEqual(limits.set, [(20000, 20000)])

    def test_enough_is_left_alone(self):
        """A soft limit that holds the kernels already is not touched."""
        limits = FakeLimits(4096, 8192)
        self.assertEqual(raise_descriptor_limit(20, limits.getrlimit, limits.setrlimit),
                         (4096, 4096))
        self.assertEqual(limits.set, [])

    def test_a_hard_limit_too_low_is_refused_saying_what_fits(self):
        """With a hard limit of 4096, 1,000 kernels are refused with the need, the limit and what fits."""
        limits = FakeLimits(1024, 4096)
        with self.assertRaises(TooFewDescriptors) as raised:
            raise_descriptor_limit(1000, limits.getrlimit, limits.setrlimit)
        message = str(raised.exception)
        self.assertIn(f"1000 kernels need about {descriptors_needed(1000)} file descriptors",
                      message)
        self.assertIn("hard RLIMIT_NOFILE is 4096", message)
        self.assertIn(f"at most {most_kernels(4096)} kernels", message)
        self.assertEqual(limits.set, [])
        self.assertLessEqual(descriptors_needed(most_kernels(4096)), 4096)
        self.assertEqual(descriptors_needed(1000) - descriptors_needed(999), FDS_PER_KERNEL)

    def test_the_service_refuses_to_start_with_too_many_kernels_for_its_limit(self):
        """``--max-kernels`` past any descriptor limit is a usage error at start-up, not EMFILE later."""
        options = Options()
        with self.assertRaises(usage.UsageError) as raised:
            options.parseOptions(["--anonymous", "--max-kernels", "100000000"])
        self.assertIn("100000000 kernels need about", str(raised.exception))
        self.assertIn("lower --max-kernels", str(raised.exception))

    def test_pooled_kernels_count_too(self):
        """The pool's kernels are held beside --max-kernels: both count against the limit."""
        options = Options()
        with self.assertRaises(usage.UsageError) as raised:
            options.parseOptions(["--anonymous", "--max-kernels", "1",
                                  "--pool", "python3=100000000"])
        self.assertIn("100000001 kernels need about", str(raised.exception))

    def test_a_router_alone_holds_no_kernels(self):
        """--no-kernels holds no kernel: no limit is checked or raised."""
        options = Options()
        options.parseOptions(["--anonymous", "--no-kernels", "--max-kernels", "100000000"])
        self.assertIsNone(options["descriptor-limit"])


class ZmqSocketLimitTests(TestCase):
    """The ZeroMQ context holds the sockets of every kernel the service may run."""

    def test_the_limit_follows_the_kernels(self):
        """Room for 1,000 kernels' sockets, far past ZeroMQ's default of 1023."""
        factory = make_zmq_factory(reactor, kernels=1000)
        self.addCleanup(factory.shutdown)
        self.assertGreaterEqual(socket_limit(factory), SOCKETS_PER_KERNEL * 1000)

    def test_channels_of_more_kernels_than_the_default_limit_open(self):
        """160 kernels' channels (1,120 sockets) open; under the default 1023 the 147th failed."""
        count = 160
        raise_descriptor_limit(count)
        factory = make_zmq_factory(reactor, kernels=count)
        self.addCleanup(factory.shutdown)
        info = {"transport": "tcp", "ip": "127.0.0.1", "key": "k" * 32,
                "signature_scheme": "hmac-sha256",
                **{f"{c}_port": 1 for c in ("shell", "iopub", "control", "hb", "stdin")}}
        opened = []
        try:
            for _ in range(count):
                opened.append(KernelChannels(factory, info, session_for(info), lambda c, m: None))
        finally:
            for channels in opened:
                channels.close()
        self.assertEqual(len(opened), count)


class KernelsHeldTests(SynchronousTestCase):
    """What the service makes room for: --max-kernels and every pooled kernel."""

    def test_pool_sizes_add_to_max_kernels(self):
        """--max-kernels 20 with pools of 5 and 3 holds 28 kernels' descriptors and connections' share."""
        from broker import tap
        options = Options()
        options.parseOptions(["--anonymous", "--max-kernels", "20", "--pool", "python3=5",
                              "--pool", "other=3"])
        self.assertEqual(tap._kernels_held(options), 28)
