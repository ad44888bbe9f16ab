#!/usr/bin/env bash
# Benchmark webkernel's WAMP router against Crossbar.io (see docs/benchmarks.md).
#
# Prepares bench/.venv-crossbar (Crossbar.io from PyPI, pinned below) if it is
# missing, then runs bench/router_bench.py with the project's virtualenv.
# Arguments are passed on, e.g.: bench/run_router_bench.sh --serializer msgpack
set -euo pipefail

# 26.10.1 is the newest release and installs and runs on CPython 3.11 here.
# numpy<2: the bjdata wheel that autobahn's UBJSON serializer imports was built
# against NumPy 1.x and prints an import traceback into the router log under NumPy 2.
CROSSBAR_VERSION="${CROSSBAR_VERSION:-26.10.1}"

source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
side_venv router-bench "$BENCH_DIR/.venv-crossbar" crossbar crossbar "$CROSSBAR_VERSION" "numpy<2"
exec "$PROJECT_PYTHON" "$BENCH_DIR/router_bench.py" "$@"
