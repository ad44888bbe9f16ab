"""Prometheus metrics of a service or kernel host (``--metrics ENDPOINT``, docs/scaling.md).

:class:`Metrics` owns one ``prometheus_client`` registry (never the global
one, so tests and several services in one process do not share counts):

* ``webkernel_kernels{state}``: kernels by execution state, read when scraped;
* ``webkernel_executions_total``: executions the kernels began (their
  ``execute_input``);
* ``webkernel_output_bytes_total``: approximate bytes of kernel output published;
* ``webkernel_kernel_start_seconds``: from ``kernels.start`` to the kernel
  ready (a histogram);
* ``webkernel_sessions`` and ``webkernel_backlog_bytes``: the router's
  sessions and the bytes waiting for slow peers (a service with a router only).

:func:`metrics_site` serves them at ``/metrics`` on their own endpoint (no
token: bind it to loopback or a private network).
"""

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.twisted import MetricsResource
from twisted.web.resource import Resource
from twisted.web.server import Site

#: seconds: kernel starts take from a fraction of a second (warm pool) to a minute
START_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
STATES = ("starting", "idle", "busy", "restarting", "dead")


class Metrics:
    """The counters the kernel host updates and the gauges read at each scrape."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.executions = Counter("webkernel_executions", "Executions the kernels began",
                                  registry=self.registry)
        self.output_bytes = Counter("webkernel_output_bytes",
                                    "Approximate bytes of kernel output published",
                                    registry=self.registry)
        self.start_seconds = Histogram("webkernel_kernel_start_seconds",
                                       "Seconds from kernels.start to the kernel ready",
                                       buckets=START_BUCKETS, registry=self.registry)

    def watch_kernels(self, states):
        """Report ``states()`` (an iterable of the kernels' execution states) at each scrape."""
        self.registry.register(_Gauges(lambda: [_kernels_by_state(states())]))

    def watch_router(self, stats):
        """Report ``stats()`` (``{sessions, backlog_bytes}``) at each scrape."""
        def gauges():
            now = stats()
            return [GaugeMetricFamily("webkernel_sessions", "WAMP sessions joined to the router",
                                      value=now["sessions"]),
                    GaugeMetricFamily("webkernel_backlog_bytes",
                                      "Bytes waiting in slow peers' backlogs",
                                      value=now["backlog_bytes"])]
        self.registry.register(_Gauges(gauges))


def _kernels_by_state(states):
    counts = dict.fromkeys(STATES, 0)
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    family = GaugeMetricFamily("webkernel_kernels", "Kernels by execution state", labels=["state"])
    for state, count in sorted(counts.items()):
        family.add_metric([state], count)
    return family


class _Gauges:
    """A prometheus_client collector of the families a function makes at scrape time."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families()

    def describe(self):
        return []


def metrics_site(metrics, reactor):
    """A Site serving *metrics* at ``/metrics``."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    return Site(root, reactor=reactor)
