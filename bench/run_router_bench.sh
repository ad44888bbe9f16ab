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

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
CROSSBAR_VENV="$BENCH_DIR/.venv-crossbar"
PROJECT_PYTHON="$REPO_DIR/.venv/bin/python"

crossbar_installed() {
    local shown
    [ -x "$CROSSBAR_VENV/bin/crossbar" ] || return 1
    shown="$("$CROSSBAR_VENV/bin/pip" show crossbar 2>/dev/null)" || return 1
    grep -qx "Version: $CROSSBAR_VERSION" <<<"$shown"
}

if ! crossbar_installed; then
    echo "[router-bench] installing crossbar==$CROSSBAR_VERSION into $CROSSBAR_VENV" >&2
    python3 -m venv "$CROSSBAR_VENV"
    "$CROSSBAR_VENV/bin/pip" install --quiet "crossbar==$CROSSBAR_VERSION" "numpy<2"
fi

if [ ! -x "$PROJECT_PYTHON" ]; then
    echo "[router-bench] $PROJECT_PYTHON not found: create the project virtualenv first" >&2
    exit 2
fi

exec "$PROJECT_PYTHON" "$BENCH_DIR/router_bench.py" "$@"
