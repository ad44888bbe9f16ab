"""The warm pool (--pool) with no kernel, no socket and no global reactor.

A KernelPool over the fake launcher and channels of test_kernel_host_units,
alone and inside a KernelHost attached to a MemoryRouter; the test plays the
kernels (fires their nudges, ends their processes).
"""

import tempfile

from autobahn.wamp import message
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from twisted.python import usage

from broker.kernel import uris
from broker.kernel.pool import RETRY_DELAY, KernelPool, parse_sizes
from broker.kernel.records import KernelRecords
from broker.tap import Options
from tests.test_kernel_host_units import (
    KERNEL_INFO,
    ChannelsFactory,
    FakeLaunchedKernel,
    FakeLauncher,
    KernelHostTestCase,
    run_execute,
    sent,
)


class PoolTestCase(SynchronousTestCase):
    """A pool of two python3 kernels on the fake launcher; ``ready_next()`` proves the starting one."""

    def setUp(self):
        from twisted.internet import task
        self.clock = task.Clock()
        self.launcher = FakeLauncher()
        self.channels = ChannelsFactory()
        self.records = KernelRecords(tempfile.mkdtemp(prefix="webkernel-pool-"))
        self.pool = KernelPool(self.launcher, self.channels, self.clock, {"python3": 2},
                               records=self.records)

    def ready_next(self):
        self.channels.last.nudges[-1].callback(KERNEL_INFO)


class KernelPoolTests(PoolTestCase):
    """Filling, replacing and stopping, one start at a time."""

    def test_fills_one_start_at_a_time(self):
        """The next kernel is launched only once the previous one is proven ready; then it stops at N."""
        self.pool.start()
        self.assertEqual(len(self.launcher.launched), 1)
        self.ready_next()
        self.assertEqual(len(self.launcher.launched), 2)
        self.assertEqual(self.pool.count("python3"), 1)
        self.ready_next()
        self.assertEqual((len(self.launcher.launched), self.pool.count("python3")), (2, 2))

    def test_take_hands_out_and_refills(self):
        """take() gives the oldest ready kernel and starts a replacement behind it."""
        self.pool.start()
        self.ready_next()
        self.ready_next()
        warm = self.pool.take("python3")
        self.assertIs(warm.launched, self.launcher.launched[0])
        self.assertEqual(warm.kernel_info, KERNEL_INFO)
        self.assertEqual(self.pool.count("python3"), 1)
        self.assertEqual(len(self.launcher.launched), 3)
        self.assertIsNone(self.pool.take("other"))

    def test_idle_kernel_that_dies_is_replaced(self):
        """A pooled kernel exiting while idle is forgotten, its files removed, and a new one started."""
        self.pool.start()
        self.ready_next()
        self.ready_next()
        dead = self.launcher.launched[0]
        dead.exit(1)
        self.assertEqual(self.pool.count("python3"), 1)
        self.assertEqual(dead.files_removed, 1)
        self.assertEqual(len(self.launcher.launched), 3)
        self.assertNotIn(dead.kernel_id, self.records.kernel_ids())
        self.ready_next()
        self.assertEqual(self.pool.count("python3"), 2)

    def test_a_handed_out_kernel_is_no_longer_the_pools(self):
        """The exit of a kernel already taken is not the pool's business (no refill, no removal)."""
        self.pool.start()
        self.ready_next()
        warm = self.pool.take("python3")
        launches = len(self.launcher.launched)
        warm.launched.exit(0)
        self.assertEqual((warm.launched.files_removed, len(self.launcher.launched)), (0, launches))

    def test_failed_start_is_retried_later_not_at_once(self):
        """A kernel that does not become ready is killed and the pool tries again after RETRY_DELAY."""
        self.pool.start()
        self.channels.last.nudges[-1].errback(Exception("not ready"))
        self.assertEqual(self.launcher.launched[0].signals, ["KILL"])
        self.assertEqual(len(self.launcher.launched), 1)
        self.clock.advance(RETRY_DELAY)
        self.assertEqual(len(self.launcher.launched), 2)

    def test_stop_kills_every_pooled_kernel(self):
        """stop() kills idle and starting kernels, fires once they exited, and refills no more."""
        self.pool.start()
        self.ready_next()
        stopped = self.pool.stop()
        self.assertEqual([k.signals for k in self.launcher.launched], [["KILL"], ["KILL"]])
        self.assertNoResult(stopped)
        for kernel in self.launcher.launched:
            kernel.exit(signal=9)
        self.successResultOf(stopped)
        self.assertEqual(len(self.launcher.launched), 2)
        self.assertEqual(self.records.kernel_ids(), set())

    def test_pooled_kernels_are_recorded_as_pooled(self):
        """Each pooled kernel's record says pooled, with its pid: a service after a crash kills it by that."""
        self.pool.start()
        kernel = self.launcher.launched[0]
        record = self.records.read(kernel.kernel_id)
        self.assertEqual((record.pooled, record.pid, record.owner), (True, kernel.pid, None))

    def test_messages_follow_the_holder(self):
        """The channels' messages go to the pool's relay target, which take_over repoints."""
        self.pool.start()
        self.ready_next()
        warm = self.pool.take("python3")
        seen = []
        warm.relay.target = lambda channel, msg: seen.append(msg["msg_type"])
        warm.channels.publish("status", {"execution_state": "idle"})
        self.assertEqual(seen, ["status"])


class PoolSizesTests(SynchronousTestCase):
    """--pool NAME=N parsing, and its refusal in multi-user mode."""

    def test_sizes(self):
        """Repeated items give one size per kernelspec."""
        self.assertEqual(parse_sizes(["python3=4", "ir=1"]), {"python3": 4, "ir": 1})

    def test_bad_sizes(self):
        """A missing name, count, or a count below one is a ValueError naming the item."""
        for item in ("python3", "=3", "python3=0", "python3=x", "python3=-1"):
            with self.assertRaises(ValueError) as caught:
                parse_sizes([item])
            self.assertIn(repr(item), str(caught.exception))

    def test_option(self):
        """--pool is repeatable and its sizes reach the options."""
        options = Options()
        options.parseOptions(["--anonymous", "--pool", "python3=2", "--pool", "ir=1"])
        self.assertEqual(options["pool-sizes"], {"python3": 2, "ir": 1})

    def test_refused_with_users_unless_forked(self):
        """In multi-user mode a spawned pool is refused: a spawned kernel runs as its owner from its first instruction."""
        users = tempfile.NamedTemporaryFile(suffix=".users", delete=False)
        users.close()
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--users", users.name, "--pool", "python3=2"])
        self.assertIn("--pool with --users needs --kernel-factory fork", str(caught.exception))
        with self.assertRaises(usage.UsageError) as caught:  # past the pool check: the empty file
            Options().parseOptions(["--users", users.name, "--pool", "python3=2",
                                    "--kernel-factory", "fork"])
        self.assertNotIn("--pool", str(caught.exception))


class PooledHostTests(KernelHostTestCase):
    """kernels.start through the router hands out a pooled kernel at once."""

    max_kernels = 5

    def setUp(self):
        super().setUp()
        self.pool = self.host.pool = KernelPool(self.launcher, self.channels, self.clock,
                                                {"python3": 2})
        self.pool.start()
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        self.events = []
        self.client.send(message.Subscribe(900, uris.KERNELS_EVENTS))
        self.settle()
        self.client.take()

    def start_call(self):
        """Call kernels.start; the messages answering it, after settling, with no kernel nudged."""
        self.requests += 1
        self.client.send(message.Call(self.requests, uris.KERNELS_START))
        self.settle()
        got = self.client.take()
        self.events.extend(m.kwargs["event"] for m in got if isinstance(m, message.Event))
        return [m for m in got if getattr(m, "request", None) == self.requests]

    def test_pooled_kernels_are_not_listed(self):
        """Kernels waiting in the pool are nobody's: kernels.list does not show them."""
        self.assertEqual(self.pool.count("python3"), 2)
        self.assertEqual(self.result(uris.KERNELS_LIST), [])

    def test_start_answers_from_the_pool_without_a_launch_or_nudge(self):
        """The start's RESULT comes with no nudge answered: the kernel was proven ready in the pool."""
        pooled = self.launcher.launched[0]
        nudges_before = sum(len(c.nudges) for c in self.channels.made)
        answer = self.start_call()
        self.assertIsInstance(answer[0], message.Result, answer)
        model = answer[0].args[0]
        self.assertEqual((model["id"], model["execution_state"], model["owner"]),
                         (pooled.kernel_id, "idle", self.client.session.authid))
        self.assertEqual(self.events, ["started", "ready"])
        # the refill behind it: one new launch, one new nudge (its own), nothing else
        self.assertEqual(len(self.launcher.launched), 3)
        self.assertEqual(sum(len(c.nudges) for c in self.channels.made), nudges_before + 1)
        self.assertEqual([k["id"] for k in self.result(uris.KERNELS_LIST)], [pooled.kernel_id])

    def test_handed_out_kernel_runs_code(self):
        """The handed-out kernel's channels now feed its conversation: execute gets its result."""
        kernel_id = self.start_call()[0].args[0]["id"]
        channels = self.channels.made[0]
        call_id = self.kernel_call(kernel_id, "eval_cell", "2+3")
        request = sent(channels, "execute_request")
        run_execute(channels, request,
                    [("execute_result", {"data": {"text/plain": "5"}, "execution_count": 1})])
        self.settle()
        answer = [m for m in self.client.take() if getattr(m, "request", None) == call_id]
        self.assertEqual(answer[0].args, ["5"])

    def test_handed_out_kernel_death_is_noticed_and_relaunched(self):
        """A handed-out kernel that exits is dead to its supervisor, which restarts it by the launcher."""
        kernel_id = self.start_call()[0].args[0]["id"]
        launches = len(self.launcher.launched)
        self.launcher.launched[0].exit(1)
        self.settle()
        self.assertEqual(len(self.launcher.launched), launches + 1)
        self.assertEqual(self.launcher.launched[-1].kernel_id, kernel_id)
        self.assertEqual(self.pool.count("python3"), 1)  # the pool is not touched by it

    def test_empty_pool_falls_back_to_launching(self):
        """With the pool empty a start launches a kernel as usual."""
        self.start_call()
        self.start_call()
        launches = len(self.launcher.launched)
        self.requests += 1
        self.client.send(message.Call(self.requests, uris.KERNELS_START))
        self.settle()
        self.assertEqual(len(self.launcher.launched), launches + 1)
        self.assertEqual(self.launcher.launched[-1].kernel_id,
                         self.host.list_kernels()[-1]["id"])


class PreparingLauncher(FakeLauncher):
    """FakeLauncher that also prepares unassigned kernels and records their assignments."""

    def __init__(self):
        super().__init__()
        self.prepared = []
        self.assignments = []   # (kernel, owner, Deferred)

    def prepare(self, kernel_name, kernel_id):
        kernel = FakeLaunchedKernel(kernel_id, kernel_name)
        self.prepared.append(kernel)
        return defer.succeed(kernel)

    def assign(self, kernel, owner):
        d = defer.Deferred()
        self.assignments.append((kernel, owner, d))
        return d


class UnassignedPoolTests(SynchronousTestCase):
    """Multi-user mode: the pool prepares kernels (no channels, no proof) and refills the same way."""

    def setUp(self):
        from twisted.internet import task
        self.launcher = PreparingLauncher()
        self.channels = ChannelsFactory()
        self.pool = KernelPool(self.launcher, self.channels, task.Clock(), {"python3": 2},
                               unassigned=True)

    def test_fills_with_prepared_kernels_without_connecting(self):
        """Prepared kernels count as pooled at once: nothing launched, no channels opened to them."""
        self.pool.start()
        self.assertEqual((len(self.launcher.prepared), self.launcher.launched), (2, []))
        self.assertEqual((self.pool.count("python3"), self.channels.made), (2, []))

    def test_take_gives_an_unconnected_kernel_and_refills(self):
        """take() hands out a prepared kernel with no channels; a new one is prepared behind it."""
        self.pool.start()
        warm = self.pool.take("python3")
        self.assertIs(warm.launched, self.launcher.prepared[0])
        self.assertIsNone(warm.channels)
        self.assertEqual((len(self.launcher.prepared), self.pool.count("python3")), (3, 2))

    def test_a_prepared_kernel_that_exits_is_replaced(self):
        """A prepared kernel exiting while it waits is forgotten (files removed) and replaced."""
        self.pool.start()
        first = self.launcher.prepared[0]
        first.exit(1)
        self.assertEqual(first.files_removed, 1)
        self.assertEqual((len(self.launcher.prepared), self.pool.count("python3")), (3, 2))


class UnassignedPooledHostTests(KernelHostTestCase):
    """kernels.start with a multi-user pool: the caller becomes the owner, then the kernel is proven."""

    max_kernels = 5

    def setUp(self):
        super().setUp()
        self.launcher = self.host.launcher = PreparingLauncher()
        self.pool = self.host.pool = KernelPool(self.launcher, self.channels, self.clock,
                                                {"python3": 1}, unassigned=True)
        self.pool.start()
        self.settle()

    def start(self):
        self.requests += 1
        self.client.send(message.Call(self.requests, uris.KERNELS_START))
        self.settle()
        return self.requests

    def answer(self, request):
        return [m for m in self.client.take() if getattr(m, "request", None) == request]

    def test_start_assigns_the_caller_then_proves_the_kernel(self):
        """The pooled kernel is given the caller as owner, connected and nudged; only then the RESULT."""
        request = self.start()
        ((kernel, owner, assigned),) = self.launcher.assignments
        self.assertIs(kernel, self.launcher.prepared[0])
        self.assertEqual(owner, self.client.session.authid)
        self.assertEqual((self.channels.made, self.answer(request)), ([], []))
        assigned.callback(kernel)
        self.settle()
        self.assertEqual(self.answer(request), [])   # connected, not yet proven
        self.channels.last.nudges[-1].callback(KERNEL_INFO)
        self.settle()
        (result,) = self.answer(request)
        self.assertEqual((result.args[0]["id"], result.args[0]["execution_state"]),
                         (kernel.kernel_id, "idle"))
        self.assertEqual(self.launcher.launched, [])   # nothing launched for it

    def test_failed_assignment_fails_the_start_and_kills_the_kernel(self):
        """If the owner cannot be given (e.g. no account), the start fails and the unassigned kernel is killed."""
        request = self.start()
        ((kernel, _owner, assigned),) = self.launcher.assignments
        assigned.errback(RuntimeError("no account"))
        self.settle()
        (error,) = self.answer(request)
        self.assertIsInstance(error, message.Error)
        self.assertEqual(error.error, "webkernel.error.kernel_start_failed")
        self.assertIn("KILL", kernel.signals)
        self.assertEqual(self.host.list_kernels(), [])

    def test_a_kernel_that_dies_before_its_assignment_fails_the_start(self):
        """The pooled kernel exiting while being assigned fails the start; no channels are left open."""
        request = self.start()
        ((kernel, _owner, assigned),) = self.launcher.assignments
        kernel.exit(1)
        assigned.callback(kernel)
        self.settle()
        (error,) = self.answer(request)
        self.assertIsInstance(error, message.Error)
        self.assertEqual(self.channels.made, [])


class HangingPrepareTests(SynchronousTestCase):
    """A prepared kernel that never finishes initialising does not hold the pool's one start."""

    def test_prepare_times_out_and_is_retried(self):
        """Past --kernel-ready-timeout the prepare is given up; the pool tries again RETRY_DELAY later."""
        from twisted.internet import task
        clock = task.Clock()
        launcher = PreparingLauncher()
        hanging = []
        launcher.prepare = lambda name, kernel_id: hanging.append(defer.Deferred()) or hanging[-1]
        pool = KernelPool(launcher, ChannelsFactory(), clock, {"python3": 1}, ready_timeout=30,
                          unassigned=True)
        pool.start()
        clock.advance(30)
        self.assertIsNone(pool.starting)
        self.assertEqual(len(hanging), 1)
        clock.advance(RETRY_DELAY)
        self.assertEqual(len(hanging), 2)
