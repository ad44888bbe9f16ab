#!/usr/bin/env bash
# Benchmark webkernel's WAMP router against Crossbar.io (see docs/benchmarks.md).
#
# Prepares bench/.venv-crossbar (Crossbar.io from PyPI, pinned below) if it is
# missing, then runs bench/router_bench.py with the project's virtualenv.
# Arguments are passed on, e.g.: bench/run_router_bench.sh --serializer msgpack
set -euo pipefail

# Crossbar.io's version (CROSSBAR_VERSION, default 26.10.1) is chosen in side_venv.sh.
source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
crossbar_venv router-bench
exec "$PROJECT_PYTHON" "$BENCH_DIR/router_bench.py" "$@"
