"""
Summaries, comparison tables and webkernel/Crossbar.io ratios of a router benchmark run.

``percentile``, ``number`` and ``table`` are shared with the kernel benchmark
(``kernel_report.py``).
"""

import math
import statistics

RPC_TARGET = 1.0     # webkernel RPC p50 / crossbar RPC p50 must be <= this
FANOUT_TARGET = 1.0  # webkernel deliveries/s / crossbar deliveries/s must be >= this


def percentile(samples, fraction):
    """Nearest-rank percentile of ``samples`` (``fraction`` in 0..1)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def rpc_summary(samples, cpu_seconds):
    """Round-trip percentiles and mean in ms, router CPU µs per call (None without samples)."""
    if not samples:
        return None
    millis = [seconds * 1000 for seconds in samples]
    return {
        "calls": len(millis),
        "p50": percentile(millis, 0.50),
        "p90": percentile(millis, 0.90),
        "p99": percentile(millis, 0.99),
        "mean": statistics.fmean(millis),
        "cpu_us_per_call": cpu_seconds / len(millis) * 1e6,
    }


def fanout_summary(rounds):
    """Median deliveries/s over the complete rounds, router CPU per delivery, and losses."""
    complete = [r for r in rounds if r.rate]
    rates = [r.rate for r in complete]
    delivered = sum(r.deliveries for r in complete)
    cpu_seconds = sum(r.cpu_seconds for r in complete)
    return {
        "median_rate": statistics.median(rates) if rates else None,
        "rates": rates,
        "cpu_us_per_delivery": cpu_seconds / delivered * 1e6 if delivered else None,
        "publish_ms": [r.publish_seconds * 1000 for r in complete],
        "missing": sum(r.missing for r in rounds),
        "anomalies": sum(r.anomalies for r in rounds),
    }


def summarize(result):
    return {
        "router": result.name,
        "rpc": rpc_summary(result.rpc_seconds, result.rpc_cpu_seconds),
        "fanout": fanout_summary(result.fanout),
        "error": result.error,
        "log_problems": result.log_problems,
    }


def number(value, spec):
    return "-" if value is None else format(value, spec)


def spread(rates):
    if not rates:
        return "no complete round"
    return f"{min(rates):,.0f}-{max(rates):,.0f}, {len(rates)}"


def table(header, rows):
    return "\n".join([header, "-" * len(header), *rows])


def rpc_table(summaries):
    header = f"{'RPC round trip':<15} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}" \
             f" {'router CPU us/call':>19}"
    rows = []
    for summary in summaries:
        rpc = summary["rpc"] or {}
        rows.append(
            f"{summary['router']:<15} {number(rpc.get('p50'), '.3f'):>8}"
            f" {number(rpc.get('p90'), '.3f'):>8} {number(rpc.get('p99'), '.3f'):>8}"
            f" {number(rpc.get('mean'), '.3f'):>8}"
            f" {number(rpc.get('cpu_us_per_call'), '.0f'):>19}"
        )
    return table(header, rows)


def fanout_table(summaries):
    header = f"{'Fan-out':<15} {'deliveries/s: median (min-max, rounds)':>38}" \
             f" {'router CPU us/delivery':>23} {'missing':>8} {'disorder':>8}"
    rows = []
    for summary in summaries:
        fanout = summary["fanout"]
        rate = f"{number(fanout['median_rate'], ',.0f')} ({spread(fanout['rates'])})"
        rows.append(
            f"{summary['router']:<15} {rate:>38}"
            f" {number(fanout['cpu_us_per_delivery'], '.1f'):>23}"
            f" {fanout['missing']:>8} {fanout['anomalies']:>8}"
        )
    return table(header, rows)


def ratios(summaries):
    """webkernel / crossbar ratios (empty unless both routers ran)."""
    by_name = {summary["router"]: summary for summary in summaries}
    if not {"webkernel", "crossbar"} <= by_name.keys():
        return {}
    ours, theirs = by_name["webkernel"], by_name["crossbar"]

    def ratio(section, key):
        a, b = (ours[section] or {}).get(key), (theirs[section] or {}).get(key)
        return a / b if a and b else None

    return {
        "rpc_p50": ratio("rpc", "p50"),
        "fanout_rate": ratio("fanout", "median_rate"),
        "rpc_cpu": ratio("rpc", "cpu_us_per_call"),
        "fanout_cpu": ratio("fanout", "cpu_us_per_delivery"),
    }


def ratio_lines(found):
    if not found:
        return []
    return [
        _ratio_line("RPC p50", found["rpc_p50"],
                    f"target <= {RPC_TARGET}", lambda r: r <= RPC_TARGET),
        _ratio_line("fan-out deliveries/s", found["fanout_rate"],
                    f"target >= {FANOUT_TARGET}", lambda r: r >= FANOUT_TARGET),
        _ratio_line("router CPU per call", found["rpc_cpu"], "lower is better"),
        _ratio_line("router CPU per delivery", found["fanout_cpu"], "lower is better"),
    ]


def _ratio_line(what, value, goal, meets=None):
    verdict = ""
    if meets is not None:
        verdict = ": not measured" if value is None else (": met" if meets(value) else ": NOT met")
    return f"webkernel/crossbar {what:<24} = {number(value, '.2f'):>5}  ({goal}{verdict})"


def errors(summaries):
    return [f"{s['router']}: {s['error']}" for s in summaries if s["error"]]


def log_problems(summaries):
    return [
        f"{s['router']}: {s['log_problems']} traceback/error lines in its log"
        for s in summaries if s["log_problems"]
    ]
