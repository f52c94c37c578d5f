#!/usr/bin/env bash
# The staged GPU run in one call within one time budget (scripts/gpu/staged_run.py says what
# each stage measures): smoke, engine overhead, castbench timing of EfficientNetB4, the timm
# peer, then as much of the default matrix as is left time for. Each stage is packed into OUT
# as soon as it ends; OUT ends with at most 8 files:
#   staged_run.log, stages.json, 1-smoke.tar.gz ... 5-matrix.tar.gz, xla-cache.tar.gz
# Runs on whatever device JAX sees (the GPU of a lent machine, or this CPU for a smoke test).
# Uses wheels/ when it holds any (scripts/gpu/fetch_wheels.sh), else the Python in use.
#
# usage: scripts/gpu/staged_run.sh OUT [BUDGET_S] [CARRIED_IN]
#   BUDGET_S    seconds for the whole call, set-up and packing included (default 520)
#   CARRIED_IN  (or the environment's CACHE_IN) what an earlier call brought back, carried
#               in: its OUT folder (each archive is unpacked first: the compile cache, the
#               finished stages, the matrix to resume), its xla-cache.tar.gz alone, or a
#               compile-cache folder, used as --compile-cache
#   PYTHON      the interpreter (default: python3)
# Exit status: 0 when every stage that ran finished or was cut at its limit, 1 when one
# failed, 2 for bad arguments.
set -uo pipefail
STAGED_RUN_STARTED=$(date +%s.%N)
export STAGED_RUN_STARTED
root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "staged_run: error: $*" >&2; exit 2; }
(($# >= 1 && $# <= 3)) || fail "usage: scripts/gpu/staged_run.sh OUT [BUDGET_S] [CARRIED_IN]"
budget=${2:-520}
[[ $budget =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "BUDGET_S takes seconds, got '$budget'"
carried=${3:-${CACHE_IN:-}}
if [[ -n $carried ]]; then
    [[ -e $carried ]] || fail "nothing at $carried to carry in"
    carried=$(cd "$(dirname "$carried")" && pwd)/$(basename "$carried")
fi
mkdir -p "$1" || fail "cannot create $1"
out=$(cd "$1" && pwd)
python=${PYTHON:-$(command -v python3 || command -v python)}
run() {
    source "$root/scripts/gpu/environment.sh"
    "$python" "$root/scripts/gpu/staged_run.py" --out "$out" --budget "$budget" \
        ${carried:+--carried-in "$carried"}
}
# a pipe, not a process substitution: tee has written the last line when the call returns
run 2>&1 | tee -a "$out/staged_run.log"
exit "${PIPESTATUS[0]}"
