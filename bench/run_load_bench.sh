#!/usr/bin/env bash
# Load (100 kernels, 300 sessions) and soak benchmarks, webkernel beside Jupyter Server
# (see docs/benchmarks.md, "Load" and "Soak").
#
#   bench/run_load_bench.sh [load_bench.py options]        # the load run
#   bench/run_load_bench.sh --soak [soak_bench.py options]  # the 30-minute soak
#   bench/run_load_bench.sh --slow-peer [slow_peer_bench.py options]  # 200 MB beside a non-reader
#
# Prepares bench/.venv-jupyter (Jupyter Server from PyPI, the same pin as the kernel
# benchmark) if it is missing, then runs the driver with the project's virtualenv.
set -euo pipefail

JUPYTER_SERVER_VERSION="${JUPYTER_SERVER_VERSION:-2.21.1}"

source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
case "${1:-}" in
    --soak) shift; exec "$PROJECT_PYTHON" "$BENCH_DIR/soak_bench.py" "$@" ;;
    --slow-peer) shift; exec "$PROJECT_PYTHON" "$BENCH_DIR/slow_peer_bench.py" "$@" ;;
esac
side_venv load-bench "$BENCH_DIR/.venv-jupyter" jupyter-server jupyter_server "$JUPYTER_SERVER_VERSION"
exec "$PROJECT_PYTHON" "$BENCH_DIR/load_bench.py" "$@"
