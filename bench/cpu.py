"""
CPU time that a router (or a Jupyter server, or a kernel) spends, read from Linux's /proc.

On a 2-core machine the client processes of the benchmark compete with the
router for the CPU, so wall-clock rates also measure the clients.  The CPU
seconds of the router's own process tree (for Crossbar.io: the node controller
and its router worker) per call and per delivery isolate the router's cost.
"""

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid):
    """User plus system CPU seconds of process ``pid`` and all its descendants."""
    stats = _all_stats()
    return sum(stats[member][1] for member in _descendants(pid, stats) if member in stats)


def process_cpu_seconds(pid):
    """User plus system CPU seconds of process ``pid`` alone (0.0 if it is gone)."""
    stat = _read_stat(pid)
    return 0.0 if stat is None else stat[1]


def descendants(pid):
    """The pids of every process below ``pid`` (children, grandchildren, ...)."""
    return _descendants(pid, _all_stats())[1:]


def _descendants(pid, stats):
    children = {}
    for member, (parent, _) in stats.items():
        children.setdefault(parent, []).append(member)
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def _all_stats():
    """{pid: (parent pid, CPU seconds)} of every process that can be read now."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    return stats


def _read_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            text = stat_file.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # fields 3.. of proc(5); the name may hold spaces
    parent, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    return parent, (utime + stime) / CLOCK_TICKS
