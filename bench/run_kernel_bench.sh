#!/usr/bin/env bash
# Benchmark webkernel's kernels against direct ZeroMQ and Jupyter Server (see docs/benchmarks.md).
#
# Prepares bench/.venv-jupyter (Jupyter Server from PyPI, pinned below) if it is
# missing, then runs bench/kernel_bench.py with the project's virtualenv, whose
# ipykernel every system's kernel runs. Arguments are passed on, e.g.:
#   bench/run_kernel_bench.sh --passes 3
# The stream through webkernel (one caller, the lines as progressive results of execute)
# against Jupyter Server without rate limits, side by side, without the fan-out:
#   bench/run_kernel_bench.sh --systems webkernel,jupyter-nolimit --watchers 0 --stream-runs 3 --passes 2
# The same with every kernel on CPU 1 and everything else on CPU 0 (see docs/benchmarks.md):
#   bench/run_kernel_bench.sh --systems direct,webkernel --watchers 0 --stream-runs 2 --passes 2 --pin 1:0
set -euo pipefail

# 2.21.1 is the newest release and installs and runs on CPython 3.11 here.
JUPYTER_SERVER_VERSION="${JUPYTER_SERVER_VERSION:-2.21.1}"

source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
side_venv kernel-bench "$BENCH_DIR/.venv-jupyter" jupyter-server jupyter_server "$JUPYTER_SERVER_VERSION"
exec "$PROJECT_PYTHON" "$BENCH_DIR/kernel_bench.py" "$@"
