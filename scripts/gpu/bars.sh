#!/usr/bin/env bash
# The GPU timing bars, side by side in one run on one card (Keras on JAX, EfficientNetB4 at
# 380 px, batch 8, float32 unless said): the compiled step against a hand-written jitted
# stateless step (train and infer), GPU utilisation during the timed steps, mixed_bfloat16's
# speed-up, and the warm-cache wall time of the full matrix (run after run_reference.sh, whose
# cold run fills the cache). Needs wheels/ (scripts/gpu/fetch_wheels.sh); writes $OUT/bars.tar.gz.
#
# usage: OUT=DIR scripts/gpu/bars.sh [--no-matrix]
#   BARS_BACKBONE, BARS_SIZE, BARS_BATCH override the configuration (for a smoke test on a CPU).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-$(command -v python3 || command -v python)}
out=${OUT:-/tmp/castbench-out}
matrix=1
[[ ${1:-} == --no-matrix ]] && matrix=0
fail() { echo "bars: error: $*" >&2; exit 2; }
mkdir -p "$out" || fail "cannot create $out"
exec > >(tee "$out/bars.log") 2>&1
source "$root/scripts/gpu/environment.sh"
bars=$root/results/gpu-bars
mkdir -p "$bars"
started=$SECONDS

backbone=${BARS_BACKBONE:-efficientnetb4}
size=${BARS_SIZE:-380}
batch=${BARS_BATCH:-8}
for mode in train infer; do
    "$python" scripts/engine_overhead.py --backbone "$backbone" --size "$size" --batch "$batch" \
        --mode "$mode" --rounds 3 --steps 20 --json "$bars/engine-overhead-$mode.json"
done
# utilisation, memory and energy of the timed steps, float32 against mixed_bfloat16
for precision in float32 mixed_bfloat16; do
    "$python" -m castbench timing --backbones "$backbone" --size "$size" --batch "$batch" \
        --mode train --precision "$precision" --steps 20 --no-plots \
        --out "$bars/$backbone-$precision"
done
if ((matrix)); then
    # the default matrix again, every executable from the persistent cache
    begin=$SECONDS
    "$python" -m castbench timing --batch 2 4 8 --no-plots --out "$bars/matrix-warm"
    echo "{\"matrix_warm_wall_s\": $((SECONDS - begin))}" > "$bars/matrix-warm-wall.json"
fi
tar czf "$out/bars.tar.gz" --exclude=.lock -C "$root" results/gpu-bars
echo "bars: done in $((SECONDS - started)) s"
