"""Prometheus metrics (--metrics) and JSON logs (--log-format json)."""

from autobahn.wamp import types
from prometheus_client import generate_latest
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from broker import tap
from broker.kernel.host import KernelHost
from broker.metrics import Metrics


def scrape(metrics):
    return generate_latest(metrics.registry).decode()


class MetricsTests(SynchronousTestCase):
    """What a scrape of /metrics shows."""

    def test_kernels_by_state_and_router_gauges_are_read_at_scrape(self):
        """Kernel states and the router's sessions and backlog are counted when scraped, every state listed."""
        metrics = Metrics()
        states = ["idle", "busy"]
        metrics.watch_kernels(lambda: states)
        metrics.watch_router(lambda: {"sessions": 3, "backlog_bytes": 1234})
        states.append("idle")
        text = scrape(metrics)
        self.assertIn('webkernel_kernels{state="idle"} 2.0', text)
        self.assertIn('webkernel_kernels{state="dead"} 0.0', text)
        self.assertIn("webkernel_sessions 3.0", text)
        self.assertIn("webkernel_backlog_bytes 1234.0", text)

    def test_host_counts_executions_and_output_bytes(self):
        """Each execute_input is one execution; every output's approximate size is added, attached or not."""
        metrics = Metrics()
        host = KernelHost(types.ComponentConfig(realm="webkernel"), None, None, Clock(),
                          metrics=metrics)
        host._publish_output("k", "iopub.execute_input", {"content": {"code": "1+1"}})
        host._publish_output("k", "iopub.stream", {"content": {"name": "stdout", "text": "x" * 100}})
        text = scrape(metrics)
        self.assertIn("webkernel_executions_total 1.0", text)
        [line] = [x for x in text.splitlines() if x.startswith("webkernel_output_bytes_total ")]
        self.assertGreater(float(line.split()[1]), 100 + len("1+1"))

    def test_separate_services_do_not_share_counts(self):
        """Each Metrics has its own registry (no global state between services or tests)."""
        first, second = Metrics(), Metrics()
        first.executions.inc()
        self.assertIn("webkernel_executions_total 0.0", scrape(second))


class OptionsTests(SynchronousTestCase):
    """The command-line options of metrics and logs."""

    def test_json_log_format_sets_twistds_observer(self):
        """--log-format json makes twistd log through jsonFileLogObserver."""
        config = ServerOptions()
        config.parseOptions(["-n", "webkernel", "--log-format", "json"])
        from broker.logformat import json_observer
        self.assertIn(config["logger"], (json_observer, "broker.logformat.json_observer"))

    def test_unknown_log_format_is_refused(self):
        """A --log-format other than text or json is a usage error."""
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--log-format", "xml"])
