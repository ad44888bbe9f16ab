#!/usr/bin/env bash
# Kernel start-up and density against Jupyter Server and Jupyter Kernel Gateway (see
# docs/benchmarks.md, "Kernel start-up and density").
#
# Prepares bench/.venv-jupyter (Jupyter Server) and bench/.venv-kg (Jupyter Kernel
# Gateway), both pinned from PyPI, if missing, then runs bench/start_bench.py with the
# project's virtualenv. Arguments are passed on, e.g.:
#   bench/run_start_bench.sh --runs 20 --burst 30 --idle 10 --pool 30
#   bench/run_start_bench.sh --systems kernel-gateway,kernel-gateway-prespawn
set -euo pipefail

JUPYTER_SERVER_VERSION="${JUPYTER_SERVER_VERSION:-2.21.1}"
KG_VERSION="${KG_VERSION:-3.0.1}"

source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
side_venv start-bench "$BENCH_DIR/.venv-jupyter" jupyter-server jupyter_server "$JUPYTER_SERVER_VERSION"
side_venv start-bench "$BENCH_DIR/.venv-kg" jupyter-kernelgateway jupyter_kernel_gateway "$KG_VERSION"
exec "$PROJECT_PYTHON" "$BENCH_DIR/start_bench.py" "$@"
