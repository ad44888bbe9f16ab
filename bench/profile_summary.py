"""
Rank the functions of a py-spy recording (``kernel_bench.py --profile``).

Reads py-spy's collapsed stacks (``--format raw``: one ``frame;frame;… count`` per
line, the thread first, root first) and prints, per thread, the share of samples in
which each function was running (self) and on the stack (total); idle samples
(threads waiting in epoll, poll, locks) are counted apart.

    python bench/profile_summary.py LOG_DIR/profile-webkernel-stream-server.txt [--top 25]

A ``.pstats`` file (``kernel_bench.py --cprofile``: twistd's cProfile of its main
thread) is ranked the same way: own time and cumulative time per function, as shares
of the time spent in Python functions (the reactor's waits in epoll excluded).
"""

import argparse
import collections
import pstats
import re

IDLE = re.compile(r"doPoll|\b(poll|epoll|select|wait|sleep|acquire|zmq_poll|_recv_into)\b")


def parse(path):
    """{thread: [(frames, count)]}."""
    threads = collections.defaultdict(list)
    with open(path) as recording:
        for line in recording:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            threads[frames[0]].append((frames[1:], int(count)))
    return threads


def short(frame):
    """``function (module.py)`` out of py-spy's ``function (path/module.py:line)``."""
    found = re.match(r"(.*) \((.*?):?(\d*)\)$", frame)
    if not found:
        return frame
    name, path = found.group(1), found.group(2)
    return f"{name} ({'/'.join(path.split('/')[-2:])})"


def summarize(stacks, top):
    total = sum(count for _, count in stacks)
    idle = sum(count for frames, count in stacks if frames and IDLE.search(frames[-1]))
    own, inclusive = collections.Counter(), collections.Counter()
    for frames, count in stacks:
        if not frames or IDLE.search(frames[-1]):
            continue
        own[short(frames[-1])] += count
        for name in {short(frame) for frame in frames}:
            inclusive[name] += count
    busy = total - idle
    lines = [f"  samples {total}, busy {busy} ({busy / total:.0%}), idle {idle}"]
    if busy:
        lines.append("  self %   function")
        lines += [f"  {100 * n / busy:5.1f}   {name}" for name, n in own.most_common(top)]
        lines.append("  total %  function")
        lines += [f"  {100 * n / busy:5.1f}   {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def summarize_pstats(path, top):
    """Own and cumulative time per function of a cProfile stats file, as shares of busy time."""
    stats = pstats.Stats(path).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    rows = [(short(f"{name} ({file}:{line})"), calls, own, cumulative)
            for (file, line, name), (_, calls, own, cumulative, _) in stats.items()]
    idle = sum(own for name, _, own, _ in rows if IDLE.search(name))
    busy = sum(own for _, _, own, _ in rows) - idle
    lines = [f"  busy {busy:.2f} s, idle {idle:.2f} s"]
    if busy:
        lines.append("  self %     calls  function")
        lines += [f"  {100 * own / busy:5.1f} {calls:9d}  {name}" for name, calls, own, _ in
                  sorted(rows, key=lambda r: -r[2]) if not IDLE.search(name)][:top]
        lines.append("  total %    calls  function")
        lines += [f"  {100 * cumulative / busy:5.1f} {calls:9d}  {name}"
                  for name, calls, _, cumulative in sorted(rows, key=lambda r: -r[3])
                  if not IDLE.search(name)][:top]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("recordings", nargs="+")
    parser.add_argument("--top", type=int, default=20)
    options = parser.parse_args()
    for path in options.recordings:
        print(path)
        if path.endswith(".pstats"):
            print(summarize_pstats(path, options.top))
            continue
        for thread, stacks in sorted(parse(path).items(), key=lambda t: -sum(c for _, c in t[1])):
            print(f" {thread}")
            print(summarize(stacks, options.top))


if __name__ == "__main__":
    main()
