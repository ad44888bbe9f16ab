#!/usr/bin/env bash
# The gateway API, timed: the same REST/WebSocket script (bench/gateway_bench.py)
# against webkernel and against Jupyter Kernel Gateway (PyPI, in bench/.venv-kg),
# each on loopback with a token. Prints one JSON line per system and the ratios.
#   bench/run_gateway_bench.sh [--rounds N] [--lines N] [--width N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/side_venv.sh"
KG_VERSION="${KG_VERSION:-3.0.1}"
side_venv gateway "$BENCH_DIR/.venv-kg" jupyter-kernelgateway jupyter_kernel_gateway "$KG_VERSION" ipykernel
work="$(mktemp -d)"
# the servers are exec'ed in their subshells, so these are their own pids; waited
# for, so that their kernels are shut down before their directory goes
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
token="bench-$RANDOM$RANDOM"
port_of() {  # wait (at most 60 s) for a log line with the port
    for _ in $(seq 600); do
        if found="$(grep -oE "$2" "$1" | head -1)"; then echo "${found##*:}"; return; fi
        sleep 0.1
    done
    echo "no port in $1" >&2; cat "$1" >&2; exit 1
}
(cd "$REPO_DIR" && PYTHONPATH="$REPO_DIR" exec "$PROJECT_PYTHON" -c "from twisted.scripts.twistd import run; run()" \
    -n --pidfile= webkernel --listen tcp:0:interface=127.0.0.1 --token "$token" \
    --kernel-dir "$work/kernels" >"$work/webkernel.log" 2>&1) &
wk_port="$(port_of "$work/webkernel.log" 'serving at http://127\.0\.0\.1:[0-9]+')"
kg_port=$("$PROJECT_PYTHON" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
(JUPYTER_RUNTIME_DIR="$work/kg-runtime" exec "$BENCH_DIR/.venv-kg/bin/jupyter-kernelgateway" \
    --KernelGatewayApp.ip=127.0.0.1 --KernelGatewayApp.port="$kg_port" \
    --KernelGatewayApp.auth_token="$token" \
    --ZMQChannelsWebsocketConnection.limit_rate=False >"$work/kg.log" 2>&1) &
port_of "$work/kg.log" "127\.0\.0\.1:$kg_port" >/dev/null
"$PROJECT_PYTHON" "$BENCH_DIR/gateway_bench.py" --name webkernel --url "http://127.0.0.1:$wk_port" --token "$token" "$@" | tee "$work/wk.json"
"$PROJECT_PYTHON" "$BENCH_DIR/gateway_bench.py" --name kernel_gateway --url "http://127.0.0.1:$kg_port" --token "$token" "$@" | tee "$work/kg.json"
"$PROJECT_PYTHON" - "$work/wk.json" "$work/kg.json" <<'PY'
import json, sys
wk, kg = (json.load(open(p)) for p in sys.argv[1:])
print(json.dumps({"latency_median_ratio_kg_over_webkernel": round(kg["latency_median_ms"] / wk["latency_median_ms"], 2),
                  "stream_ratio_webkernel_over_kg": round(wk["stream_mb_s"] / kg["stream_mb_s"], 2)}))
PY
