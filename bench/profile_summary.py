"""
Rank the functions of a py-spy recording (``kernel_bench.py --profile``).

Reads py-spy's collapsed stacks (``--format raw``: one ``frame;frame;… count`` per
line, the thread first, root first) and prints, per thread, the share of samples in
which each function was running (self) and on the stack (total); idle samples
(threads waiting in epoll, poll, locks) are counted apart.

    python bench/profile_summary.py LOG_DIR/profile-webkernel-stream-server.txt [--top 25]
"""

import argparse
import collections
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("recordings", nargs="+")
    parser.add_argument("--top", type=int, default=20)
    options = parser.parse_args()
    for path in options.recordings:
        print(path)
        for thread, stacks in sorted(parse(path).items(), key=lambda t: -sum(c for _, c in t[1])):
            print(f" {thread}")
            print(summarize(stacks, options.top))


if __name__ == "__main__":
    main()
