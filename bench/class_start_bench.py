"""Class start burst: N students sign in and start kernels at once; start-to-first-result.

Starts ``twistd webkernel --users`` (students ``s000`` … with passwords, a
real kernel each, ``--unsafe-shared-account``) once per kernel factory
(``spawn``, ``fork``, and ``fork-pool``: fork with ``--pool python3=P``,
``--pool`` students by default, the pool full before the release), then N
threads, released together (or spread evenly over ``--spread`` seconds),
each: connect and sign in (WAMP-CRA, ``broker.client``), start a kernel, and
evaluate ``1+1``. Per student, the time from its release to the ``'2'``
coming back; the summary gives p50, p90 and max of those, the burst's wall
time, and the machine's load average before and after (the numbers are only
as quiet as the machine).

    .venv/bin/python bench/class_start_bench.py [--students 30] [--factories spawn,fork,fork-pool]
        [--spread 0] [--pool P]

Prints a JSON summary; the numbers of a run are in docs/benchmarks.md.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from broker.client import connect  # noqa: E402
from broker.users import store  # noqa: E402
from tests.service import ServiceProcess  # noqa: E402

TIMEOUT = 600


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else None


#: the service's options of each factory (``{pool}``: the pool's size)
FACTORIES = {"spawn": ["--kernel-factory", "spawn"], "fork": ["--kernel-factory", "fork"],
             "fork-pool": ["--kernel-factory", "fork", "--pool", "python3={pool}"]}


def wait_for_pool(service, size):
    """Wait (bounded) until the service logs its pool full."""
    deadline = time.monotonic() + TIMEOUT
    while f"{size} in the pool" not in service.log():
        if time.monotonic() > deadline or not service.alive():
            raise RuntimeError(f"the pool of {size} never filled:\n{service.log()[-2000:]}")
        time.sleep(0.1)  # polling the service's log


def burst(factory, students, spread, pool=0):
    """One service with *factory*; every student's start-to-first-result, in seconds (None if it failed)."""
    base = tempfile.mkdtemp(prefix=f"class-start-{factory}-")
    pool = pool or students
    passwords = {f"s{i:03d}": f"student password {i}" for i in range(students)}
    users_file = os.path.join(base, "users.json")
    store.save(users_file, {n: store.User.create(n, "student", p) for n, p in passwords.items()})
    service = ServiceProcess("--users", users_file, "--unsafe-shared-account",
                             "--home-root", os.path.join(base, "homes"),
                             "--kernel-dir", os.path.join(base, "kernels"),
                             "--notebook-dir", base,
                             *(a.format(pool=pool) for a in FACTORIES[factory]),
                             "--max-kernels", str(students + 5),
                             "--max-connections-per-address", str(students + 50), timeout=120)
    times, errors, clients = {}, {}, []
    go = threading.Event()

    def student(index, name):
        go.wait()
        time.sleep(index * spread / students)  # the bench's schedule, not a test's wait
        started = time.monotonic()
        try:
            client = connect(service.ws_url, user=name, password=passwords[name], timeout=TIMEOUT)
            clients.append(client)
            kernel = client.start_kernel(timeout=TIMEOUT)
            assert kernel.eval_cell("1+1", timeout=TIMEOUT) == "2"
            times[name] = time.monotonic() - started
        except Exception as e:  # noqa: BLE001 -- a bench reports every failure and goes on
            errors[name] = f"{type(e).__name__}: {e}"

    if "pool" in factory:
        wait_for_pool(service, pool)
    threads = [threading.Thread(target=student, args=(i, n)) for i, n in enumerate(passwords)]
    for t in threads:
        t.start()
    load_before = os.getloadavg()
    began = time.monotonic()
    go.set()
    for t in threads:
        t.join(TIMEOUT + 60)
    wall = time.monotonic() - began
    load_after = os.getloadavg()
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
    service.stop(timeout=60)
    values = list(times.values())
    return {
        "factory": factory, "pool": pool if "pool" in factory else 0,
        "students": students, "spread_s": spread, "ok": len(values),
        "failed": errors,
        "start_to_first_result_s": {
            "p50": round(percentile(values, 50), 2) if values else None,
            "p90": round(percentile(values, 90), 2) if values else None,
            "max": round(max(values), 2) if values else None},
        "burst_wall_s": round(wall, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--factories", default="spawn,fork,fork-pool")
    parser.add_argument("--pool", type=int, default=0,
                        help="the pool's size with fork-pool (default: one per student)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="seconds over which the students' starts are spread (0: all at once)")
    args = parser.parse_args()
    results = [burst(factory, args.students, args.spread, args.pool)
               for factory in args.factories.split(",")]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
