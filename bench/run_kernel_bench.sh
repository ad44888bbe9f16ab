#!/usr/bin/env bash
# Benchmark webkernel's kernels against direct ZeroMQ and Jupyter Server (see docs/benchmarks.md).
#
# Prepares bench/.venv-jupyter (Jupyter Server from PyPI, pinned below) if it is
# missing, then runs bench/kernel_bench.py with the project's virtualenv, whose
# ipykernel every system's kernel runs. Arguments are passed on, e.g.:
#   bench/run_kernel_bench.sh --passes 3
set -euo pipefail

# 2.21.1 is the newest release and installs and runs on CPython 3.11 here.
JUPYTER_SERVER_VERSION="${JUPYTER_SERVER_VERSION:-2.21.1}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
JUPYTER_VENV="$BENCH_DIR/.venv-jupyter"
PROJECT_PYTHON="$REPO_DIR/.venv/bin/python"

jupyter_server_installed() {
    local shown
    [ -x "$JUPYTER_VENV/bin/jupyter-server" ] || return 1
    shown="$("$JUPYTER_VENV/bin/pip" show jupyter_server 2>/dev/null)" || return 1
    grep -qx "Version: $JUPYTER_SERVER_VERSION" <<<"$shown"
}

if ! jupyter_server_installed; then
    echo "[kernel-bench] installing jupyter_server==$JUPYTER_SERVER_VERSION into $JUPYTER_VENV" >&2
    python3 -m venv "$JUPYTER_VENV"
    "$JUPYTER_VENV/bin/pip" install --quiet "jupyter_server==$JUPYTER_SERVER_VERSION"
fi

if [ ! -x "$PROJECT_PYTHON" ]; then
    echo "[kernel-bench] $PROJECT_PYTHON not found: create the project virtualenv first" >&2
    exit 2
fi

exec "$PROJECT_PYTHON" "$BENCH_DIR/kernel_bench.py" "$@"
