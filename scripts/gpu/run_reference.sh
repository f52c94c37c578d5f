#!/usr/bin/env bash
# The GPU reference run, on a bare GPU machine without network: Keras on JAX with
# `castbench timing`, then the same matrix in PyTorch with `castbench peer timm`, the plots
# (Keras alone, and Keras against PyTorch), `castbench compare`, and everything packed into
# $OUT. Needs wheels/ from scripts/gpu/fetch_wheels.sh; run from anywhere in the repository.
#
# usage: OUT=DIR scripts/gpu/run_reference.sh [--budget SECONDS] [--peer-share FRACTION]
#            [--no-peer] [--name NAME] [--results DIR] [MATRIX OPTIONS]
#   --budget S        wall time for the whole run, packing included (default 540: one
#                     10-minute command, with start-up to spare)
#   --peer-share F    the part of the budget kept back for PyTorch while Keras runs
#                     (default 0.35); what Keras leaves unused also goes to PyTorch
#   --no-peer         Keras only
#   --name NAME       results folders are DIR/gpu-NAME and DIR/gpu-NAME-timm (default: the
#                     GPU's name, lower-case, e.g. h200; "cpu" without a GPU)
#   --results DIR     where the folders go (default: results/ in the repository)
#   MATRIX OPTIONS    options both commands take: --backbones, --batch, --mode, --size,
#                     --steps, --warmup (default: castbench's full matrix)
#
# Both commands resume: rerun with the folders from an earlier run's tarball unpacked in the
# repository root, and only what is missing is measured.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
budget=540
peer_share=0.35
peer=1
name=""
results=$root/results
matrix=()
while (($#)); do
    case $1 in
        --budget) budget=$2; shift 2 ;;
        --peer-share) peer_share=$2; shift 2 ;;
        --no-peer) peer=0; shift ;;
        --name) name=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
        *) matrix+=("$1"); shift ;;
    esac
done
fail() { echo "run_reference: error: $*" >&2; exit 2; }
[[ $budget =~ ^[0-9]+$ ]] || fail "--budget takes whole seconds, got '$budget'"
[[ $peer_share =~ ^(0(\.[0-9]+)?|1(\.0*)?)$ ]] || fail "--peer-share takes 0 to 1, got '$peer_share'"
python=${PYTHON:-$(command -v python3 || command -v python)}
out=${OUT:-/tmp/castbench-out}
mkdir -p "$out" "$results" || fail "cannot create $out or $results"
exec > >(tee "$out/run_reference.log") 2>&1
started=$SECONDS
left() { echo $((budget - (SECONDS - started))); }

source "$root/scripts/gpu/environment.sh"
castbench=("$python" -m castbench)

if [[ -z $name ]]; then
    name=$("$python" - <<'PY'
import re
try:
    import pynvml
    pynvml.nvmlInit()
    card = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
    card = card.decode() if isinstance(card, bytes) else card
except Exception:
    card = "cpu"
card = re.sub(r"^nvidia\s+", "", card.strip().lower())
print(re.sub(r"[^a-z0-9]+", "-", card).strip("-"))
PY
)
fi
keras_dir=$results/gpu-$name
peer_dir=$results/gpu-$name-timm
report=$results/gpu-$name-vs-timm.txt
echo "run_reference: ${budget} s budget; Keras (JAX) -> $keras_dir; PyTorch (timm) -> $peer_dir"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null

if ((peer)) && ! "$python" -c "import torch, timm" 2>/dev/null; then
    echo "run_reference: PyTorch or timm does not import here: the PyTorch peer is skipped"
    peer=0
fi
reserve=60  # plots, compare and packing
keras_s=$("$python" -c "print(int(($(left) - $reserve) * (1 - $peer * $peer_share)))")
echo "run_reference: Keras gets up to ${keras_s} s"
# SIGINT: castbench keeps every finished row and stops its workers
timeout -s INT -k 30 "$keras_s" "${castbench[@]}" timing --resume --no-plots \
    --out "$keras_dir" "${matrix[@]}"
status=$?
echo "run_reference: castbench timing exited with status $status after $((SECONDS - started)) s"
((status == 2)) && fail "castbench timing refused the options (above); nothing else is run"

if ((peer)); then
    peer_s=$(($(left) - reserve))
    if ((peer_s > 30)); then
        # --budget stops starting configurations; timeout is the hard stop for a long one
        timeout -s INT -k 30 "$peer_s" "${castbench[@]}" peer timm --resume \
            --budget $((peer_s * 3 / 4)) --out "$peer_dir" "${matrix[@]}"
        echo "run_reference: castbench peer timm exited with status $? after $((SECONDS - started)) s"
    else
        echo "run_reference: no time left for the PyTorch peer"
    fi
fi

folders=()
for dir in "$keras_dir" "$peer_dir"; do
    [[ -f $dir/timing.json ]] && folders+=("$dir")
done
((${#folders[@]})) || fail "nothing was measured"
[[ -f $keras_dir/timing.json ]] && "${castbench[@]}" plot "$keras_dir"
if ((${#folders[@]} == 2)); then
    "${castbench[@]}" plot "$keras_dir" --peer "$peer_dir" --out "$keras_dir/plots-vs-timm"
    "${castbench[@]}" compare "$keras_dir" "$peer_dir" > "$report"
    folders+=("$report")
    cat "$report"
fi

# What comes back: one tarball of the folders (unpack it in the repository root), and the
# tables on their own for a quick look.
parent=$(dirname "$results")
relative=()
for path in "${folders[@]}"; do relative+=("${path#"$parent"/}"); done
tar czf "$out/gpu-$name.tar.gz" --exclude=.lock -C "$parent" "${relative[@]}"
for dir in "$keras_dir" "$peer_dir"; do
    [[ -f $dir/timing.csv ]] && cp "$dir/timing.csv" "$out/$(basename "$dir")-timing.csv"
done
[[ -f $report ]] && cp "$report" "$out/"
echo "run_reference: done in $((SECONDS - started)) s; in $out:"
ls -l "$out"
