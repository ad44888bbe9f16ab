# Sourced by the bench/run_*_bench.sh scripts: a peer, pinned, in a virtualenv of its own.
#
#   side_venv NAME VENV_DIR BIN PACKAGE VERSION [EXTRA_REQUIREMENT...]
#
# Installs PACKAGE==VERSION (and the extras) from PyPI into VENV_DIR unless VENV_DIR/bin/BIN
# exists and pip reports exactly that version; NAME prefixes the progress message.
# Then checks the project's virtualenv, which runs every benchmark driver.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
PROJECT_PYTHON="$REPO_DIR/.venv/bin/python"

side_venv() {
    local name="$1" venv="$2" bin="$3" package="$4" version="$5" shown
    shift 5
    if [ -x "$venv/bin/$bin" ] \
        && shown="$("$venv/bin/pip" show "$package" 2>/dev/null)" \
        && grep -qx "Version: $version" <<<"$shown"; then
        :
    else
        echo "[$name] installing $package==$version into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "$package==$version" "$@"
    fi
    if [ ! -x "$PROJECT_PYTHON" ]; then
        echo "[$name] $PROJECT_PYTHON not found: create the project virtualenv first (./run-tests does)" >&2
        exit 2
    fi
}

# Crossbar.io for the router benchmark and the scale-out tests, in bench/.venv-crossbar.
# 26.10.1 is the newest release and installs and runs on CPython 3.11 here.
# numpy<2: the bjdata wheel that autobahn's UBJSON serializer imports was built
# against NumPy 1.x and prints an import traceback into the router log under NumPy 2.
CROSSBAR_VERSION="${CROSSBAR_VERSION:-26.10.1}"

crossbar_venv() {
    side_venv "$1" "$BENCH_DIR/.venv-crossbar" crossbar crossbar "$CROSSBAR_VERSION" "numpy<2"
}
