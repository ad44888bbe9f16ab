#!/usr/bin/env bash
# Scale-out bench: 1, 2 and 4 kernel hosts behind one Crossbar.io (see docs/scaling.md).
# Prepares bench/.venv-crossbar if missing; arguments go to bench/scale_bench.py.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
crossbar_venv scale-bench
exec "$PROJECT_PYTHON" "$BENCH_DIR/scale_bench.py" "$@"
