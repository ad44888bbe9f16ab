"""
Summaries, tables and ratios of a kernel benchmark run (``kernel_bench.py``).

Builds on ``report.py`` (percentiles, number formatting, tables) of the router benchmark.
"""

import statistics

from kernel_clients import IDLE_GRACE
from report import number, percentile, table

LATENCY_TARGET = 1.3   # webkernel p50 / direct p50 must be <= this
STREAM_TARGET = 1.15   # webkernel time to every line / direct's must be <= this
FANOUT_TARGET = 0.2    # webkernel fan-out time / Jupyter Server's must be <= this
#: webkernel's time to every line of the stream (one caller, the lines as progressive
#: results of execute) / Jupyter Server's without rate limits must be <= this
STREAM_JUPYTER_TARGET = 1.0


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def latency_summary(samples, cpu):
    if not samples:
        return None
    millis = [s * 1000 for s in samples]
    return {"runs": len(millis), "p50": percentile(millis, 0.50), "p90": percentile(millis, 0.90),
            "p99": percentile(millis, 0.99), "mean": statistics.fmean(millis),
            "server_cpu_us": cpu["server"] / len(millis) * 1e6 if cpu["server"] else None,
            "kernel_cpu_us": cpu["kernel"] / len(millis) * 1e6 if cpu["kernel"] else None}


def stream_summary(runs, expected):
    if not runs:
        return None
    complete = [r["lines_seconds"] for r in runs if r["lines_seconds"] is not None]
    return {
        "runs": len(runs),
        "expected": expected,
        "lines_median": _median(complete),
        "lines_all": complete,
        "last_line_median": _median([r.get("last_line_seconds") for r in runs]),
        "done_median": _median([r["done_seconds"] for r in runs]),
        "received": [r["received"] for r in runs],
        "missing": sum(r["missing"] for r in runs),
        "disorder": sum(r["disorder"] for r in runs),
        "idles_lost": sum(1 for r in runs if r.get("idle_lost")),
        "server_cpu": _median([r.get("server_cpu") for r in runs]),
        "kernel_cpu": _median([r.get("kernel_cpu") for r in runs]),
        "client_cpu": _median([r.get("client_cpu") for r in runs]),
    }


def fanout_summary(rounds):
    if not rounds:
        return None
    complete = [r["seconds"] for r in rounds if r["seconds"] is not None]
    delivered = sum(r["received"] for r in rounds)
    cpu = [r["server_cpu"] for r in rounds if r.get("server_cpu") is not None]
    return {
        "rounds": len(rounds),
        "median": _median(complete),
        "all": complete,
        "last_line_median": _median([r.get("last_line_seconds") for r in rounds]),
        "ended_median": _median([r["ended_seconds"] for r in rounds]),
        "expected": sum(r["deliveries"] for r in rounds),
        "received": delivered,
        "missing": sum(r["missing"] for r in rounds),
        "disorder": sum(r["disorder"] for r in rounds),
        "server_cpu_us": sum(cpu) / delivered * 1e6 if cpu and delivered else None,
        "kernel_cpu": _median([r.get("kernel_cpu") for r in rounds]),
    }


def summarize(result, options):
    return {
        "system": result.name,
        "latency": latency_summary(result.latency, result.latency_cpu),
        "stream": stream_summary(result.stream, options.stream_lines),
        "fanout": fanout_summary(result.fanout),
        "error": result.error,
        "log_problems": result.log_problems,
    }


def _spread(values, spec, unit=""):
    if not values:
        return "incomplete"
    if len(values) == 1:
        return f"{format(values[0], spec)}{unit}, 1"
    return f"{format(min(values), spec)}-{format(max(values), spec)}{unit}, {len(values)}"


def latency_table(summaries):
    header = (f"{'Latency 1+1':<16} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}"
              f" {'runs':>6} {'CPU us/run: server kernel':>26}")
    rows = []
    for s in summaries:
        lat = s["latency"] or {}
        cpu = (f"{number(lat.get('server_cpu_us'), '.0f'):>6}"
               f" {number(lat.get('kernel_cpu_us'), '.0f'):>6}")
        rows.append(f"{s['system']:<16} {number(lat.get('p50'), '.3f'):>8}"
                    f" {number(lat.get('p90'), '.3f'):>8} {number(lat.get('p99'), '.3f'):>8}"
                    f" {number(lat.get('mean'), '.3f'):>8} {lat.get('runs', 0):>6} {cpu:>26}")
    return table(header, rows)


def stream_table(summaries, lines):
    header = (f"{'Stream':<16} {'every line s: median (min-max, runs)':>37} {'done s':>7}"
              f" {'lines delivered':>16} {'disorder':>8} {'CPU s: server kernel client':>28}")
    rows = []
    for s in summaries:
        st = s["stream"]
        if st is None:
            rows.append(f"{s['system']:<16} {'-':>37}")
            continue
        every = f"{number(st['lines_median'], '.3f')} ({_spread(st['lines_all'], '.3f')})"
        delivered = min(st["received"])
        delivered_text = f"{delivered:,}" if delivered == lines else f"{delivered:,} (min)"
        cpu = (f"{number(st['server_cpu'], '.2f'):>6} {number(st['kernel_cpu'], '.2f'):>6}"
               f" {number(st['client_cpu'], '.2f'):>6}")
        rows.append(f"{s['system']:<16} {every:>37} {number(st['done_median'], '.3f'):>7}"
                    f" {delivered_text:>16} {st['disorder']:>8} {cpu:>28}")
    notes = [f"{s['system']}: the status idle of {s['stream']['idles_lost']} of"
             f" {s['stream']['runs']} stream cells never came (waited {IDLE_GRACE:g} s after"
             f" the reply; done = the reply)" for s in summaries if s["stream"] and s["stream"]["idles_lost"]]
    return table(header, rows) + "".join("\n" + note for note in notes)


def fanout_table(summaries):
    header = (f"{'Fan-out':<16} {'every line everywhere s: median (min-max, complete rounds)':>58}"
              f" {'last line s':>11} {'lines delivered':>20} {'disorder':>8}"
              f" {'server CPU us/line':>19}")
    rows = []
    for s in summaries:
        fo = s["fanout"]
        if fo is None:
            continue
        of_rounds = "" if len(fo["all"]) == fo["rounds"] else f" of {fo['rounds']}"
        every = f"{number(fo['median'], '.3f')} ({_spread(fo['all'], '.3f')}{of_rounds})"
        delivered = f"{fo['received']:,}/{fo['expected']:,}"
        rows.append(f"{s['system']:<16} {every:>58} {number(fo['last_line_median'], '.3f'):>11}"
                    f" {delivered:>20} {fo['disorder']:>8} {number(fo['server_cpu_us'], '.1f'):>19}")
    return table(header, rows)


def ratios(summaries):
    by = {s["system"]: s for s in summaries}

    def get(system, section, key):
        found = (by.get(system) or {}).get(section) or {}
        return found.get(key)

    def ratio(a, b):
        return a / b if a is not None and b else None

    found = {
        "latency_webkernel_direct": ratio(get("webkernel", "latency", "p50"),
                                          get("direct", "latency", "p50")),
        "stream_webkernel_direct": ratio(get("webkernel", "stream", "lines_median"),
                                         get("direct", "stream", "lines_median")),
    }
    found["stream_webkernel_jupyter_nolimit"] = ratio(
        get("webkernel", "stream", "lines_median"), get("jupyter-nolimit", "stream", "lines_median"))
    # Jupyter Server lost lines in every stream run: the time its last delivered line
    # arrived is a lower bound of its time, so this ratio is an upper bound.
    found["stream_webkernel_jupyter_nolimit_bound"] = None if found[
        "stream_webkernel_jupyter_nolimit"] is not None else ratio(
        get("webkernel", "stream", "lines_median"),
        get("jupyter-nolimit", "stream", "last_line_median"))
    for name in ("jupyter", "jupyter-nolimit"):
        key = f"fanout_webkernel_{name.replace('-', '_')}"
        found[key] = ratio(get("webkernel", "fanout", "median"), get(name, "fanout", "median"))
        # Jupyter Server lost lines in every round: the time its last delivered line
        # arrived is a lower bound of its time, so this ratio is an upper bound.
        found[key + "_bound"] = None if found[key] is not None else ratio(
            get("webkernel", "fanout", "median"), get(name, "fanout", "last_line_median"))
    for name in ("jupyter", "jupyter-nolimit"):
        found[f"latency_{name}_direct"] = ratio(get(name, "latency", "p50"),
                                                get("direct", "latency", "p50"))
        found[f"stream_{name}_direct"] = ratio(get(name, "stream", "lines_median"),
                                               get("direct", "stream", "lines_median"))
    return found


def _line(what, value, target=None, below=True):
    verdict = ""
    if target is not None:
        met = value is not None and (value <= target if below else value >= target)
        verdict = (f"  (target <= {target}: " + ("not measured" if value is None else
                                                   "met" if met else "NOT met") + ")")
    return f"{what:<46} = {number(value, '.2f'):>6}{verdict}"


def _bounded_line(what, found, key, target):
    if found[key] is None and found[key + "_bound"] is not None:
        return [_line(what + " <=", found[key + "_bound"], target)
                + "  (Jupyter Server lost lines: ratio to its last delivered line)"]
    return [_line(what, found[key], target)]


def _fanout_line(label, found, key):
    return _bounded_line(f"fan-out          webkernel / {label}", found, key, FANOUT_TARGET)


def ratio_lines(found):
    return [
        _line("latency p50      webkernel / direct", found["latency_webkernel_direct"],
              LATENCY_TARGET),
        _line("stream           webkernel / direct", found["stream_webkernel_direct"],
              STREAM_TARGET),
        *_bounded_line("stream           webkernel / jupyter-nolimit", found,
                       "stream_webkernel_jupyter_nolimit", STREAM_JUPYTER_TARGET),
        *_fanout_line("jupyter-nolimit", found, "fanout_webkernel_jupyter_nolimit"),
        *_fanout_line("jupyter (default)", found, "fanout_webkernel_jupyter"),
        _line("latency p50      jupyter / direct", found["latency_jupyter_direct"]),
        _line("latency p50      jupyter-nolimit / direct", found["latency_jupyter-nolimit_direct"]),
        _line("stream           jupyter-nolimit / direct", found["stream_jupyter-nolimit_direct"]),
    ]
