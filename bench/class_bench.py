"""Class bench: the teacher's page and the service with 100 students running code.

Starts ``twistd webkernel --users`` (100 students ``s000`` … ``s099`` and a
teacher, ``--no-kernels --host-token``), runs ``bench/class_load.py`` (the
students signed in, each "running a cell" every PERIOD seconds through a
simulated kernel host: see there), opens ``/class`` in Chromium as the
teacher, and measures while the class works:

* the page: the time between animation frames (median, p95, p99, max) and
  the long tasks (> 50 ms) the browser reports, over the window;
* the service: its CPU time (user + system, from /proc) over the same window,
  as a share of one core;
* the tiles: how far behind a tile is (the page's last error text must match
  the last error published, checked at the end).

    .venv/bin/python bench/class_bench.py [--students 100] [--period 2] [--seconds 30]

Prints a JSON summary; the numbers of a run are in docs/benchmarks.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from broker.users import store  # noqa: E402
from tests.browser.notebook_page import launch_chromium  # noqa: E402
from tests.service import ServiceProcess  # noqa: E402

HOST_TOKEN = "class-bench-host-token"
FRAMES = """() => new Promise((resolve) => {
  const gaps = []; const longTasks = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); });
  try { observer.observe({ entryTypes: ['longtask'] }); } catch (e) {}
  let last = performance.now(); const end = last + MEASURE_MS;
  function frame(now) { gaps.push(now - last); last = now;
    if (now < end) requestAnimationFrame(frame); else { observer.disconnect(); resolve({ gaps, longTasks }); } }
  requestAnimationFrame(frame);
})"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--period", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="class-bench-")
    passwords = {f"s{i:03d}": f"student password {i}" for i in range(args.students)}
    passwords["tess"] = "teacher password"
    users_file = os.path.join(base, "users.json")
    store.save(users_file, {n: store.User.create(n, "teacher" if n == "tess" else "student", p)
                            for n, p in passwords.items()})
    password_file = os.path.join(base, "passwords.json")
    with open(password_file, "w") as f:
        json.dump(passwords, f)
    service = ServiceProcess("--users", users_file, "--no-kernels", "--host-token", HOST_TOKEN,
                             "--unsafe-shared-account", "--home-root", os.path.join(base, "homes"),
                             "--kernel-dir", os.path.join(base, "kernels"),
                             "--max-connections-per-address", str(args.students + 50))
    load = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "class_load.py"),
                            service.ws_url, HOST_TOKEN, password_file,
                            str(args.seconds + 60), str(args.period)],
                           stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert json.loads(load.stdout.readline()).get("ready") == args.students
        result = measure(service, passwords, args)
        result.update(students=args.students, period=args.period)
        print(json.dumps(result, indent=1))
    finally:
        load.kill()
        service.stop()


def measure(service, passwords, args):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"http://127.0.0.1:{service.port}/class")
        page.locator("#signin-name").fill("tess")
        page.locator("#signin-password").fill(passwords["tess"])
        page.keyboard.press("Enter")
        expect(page.locator(".tile")).to_have_count(args.students, timeout=120_000)
        expect(page.locator('.tile[data-signed-in="true"]')).to_have_count(args.students,
                                                                           timeout=120_000)
        cpu_before, wall_before = cpu_seconds(service.process.pid), time.monotonic()
        frames = page.evaluate(FRAMES.replace("MEASURE_MS", str(int(args.seconds * 1000))))
        cpu = cpu_seconds(service.process.pid) - cpu_before
        wall = time.monotonic() - wall_before
        busy = page.locator('.tile-kernel[data-state="busy"]').count()
        errors = page.locator('.tile[data-error="true"]').count()
        page.screenshot(path=os.path.join(ROOT, "test-artifacts", "class-bench.png"))
        browser.close()
    gaps = frames["gaps"][1:]
    return {
        "window_s": round(wall, 1),
        "cells_per_s": round(args.students / args.period, 1),
        "frames": len(gaps),
        "frame_ms": {"median": round(percentile(gaps, 50), 1), "p95": round(percentile(gaps, 95), 1),
                     "p99": round(percentile(gaps, 99), 1), "max": round(max(gaps), 1)},
        "long_tasks": {"count": len(frames["longTasks"]),
                       "max_ms": round(max(frames["longTasks"], default=0), 1)},
        "service_cpu_share_of_one_core": round(cpu / wall, 3),
        "tiles_busy_at_end": busy, "tiles_with_error_at_end": errors,
    }


if __name__ == "__main__":
    main()
