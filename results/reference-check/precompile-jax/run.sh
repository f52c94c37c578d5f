#!/usr/bin/env bash
# Does pre-compiling pay on this 2-core CPU under JAX? The same matrix with --compile-jobs 0
# and 2 (the default here), alternating, each with a fresh compile cache; whole-command wall.
set -u
cd /work/main
OUT=${OUT:-results/reference-check/precompile-jax}
mkdir -p "$OUT/runs"
# Rounds FIRST .. FIRST+ROUNDS-1, appended to the CSV: a later run adds rounds to earlier ones.
[ -f "$OUT/precompile.csv" ] ||
  echo "round,compile_jobs,wall_s,load_1m_at_start,exit,precompile_s" > "$OUT/precompile.csv"
first=${FIRST:-1}
for round in $(seq "$first" $((first + ${ROUNDS:-2} - 1))); do
  if [ $((round % 2)) = 1 ]; then order="0 2"; else order="2 0"; fi
  for jobs in $order; do
    cache=$(mktemp -d /tmp/pc-cache.XXXX)
    run="$OUT/runs/jobs$jobs-$round"
    load=$(cut -d' ' -f1 /proc/loadavg)
    start=$(date +%s.%N)
    KERAS_BACKEND=jax .venv/bin/castbench timing --backbones MobileNetV2 ResNet50 --size 96 \
      --batch 2 8 --compile-cache "$cache" --compile-jobs "$jobs" --no-plots --out "$run" \
      > "$run.log" 2>&1
    rc=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    pre=$(.venv/bin/python -c "import json,sys;print(json.load(open('$run/run.json')).get('precompile_s'))")
    echo "$round,$jobs,$(printf %.1f "$wall"),$load,$rc,$pre" | tee -a "$OUT/precompile.csv"
    rm -rf "$cache"
  done
done
