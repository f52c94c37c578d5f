#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with what a bare GPU machine lacks to run castbench on the JAX
# backend, for its Python 3.12: Keras, the two of its dependencies that machine does not have
# (namex, optree), and castbench's own wheel. Run here, with access to PyPI; carry wheels/ to
# the GPU machine (scripts/gpu/staged_run.sh and environment.sh unpack it there). Prints what
# a call would carry against the 64 MiB a call may carry.
#
# The lent machine (/work/.library/device/KINDS.md) has Python 3.12, JAX with CUDA, PyTorch,
# timm, numpy, ml-dtypes, absl-py, rich (with markdown-it-py, mdurl, pygments), h5py,
# typing-extensions, packaging, pandas, matplotlib, psutil, nvidia-ml-py, pytest and
# pytest-benchmark, and no network. Keras needs absl-py, numpy, rich, namex, h5py, optree,
# ml-dtypes and packaging: namex and optree are the ones missing.
#
# usage: scripts/gpu/fetch_wheels.sh [DEST]   (default: wheels/ in the repository root)
#   PYTHON   an interpreter with pip and Keras installed (default: python3); its Keras version
#            is the one fetched, so the GPU run and the CPU reference run share it
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$root/wheels}
python=${PYTHON:-python3}
carry_limit_mib=64

keras_version=$("$python" -c 'from importlib.metadata import version; print(version("keras"))' \
    2>/dev/null || true)
keras=keras${keras_version:+==$keras_version}

mkdir -p "$dest"
rm -f "$dest"/*.whl
# --no-deps: everything else Keras needs is on the machine already, numpy above all in the
# version its JAX was built against, and must not be shadowed.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    -d "$dest" "$keras" namex optree
"$python" -m pip wheel --quiet --no-deps -w "$dest" "$root"
ls -l "$dest"

# What a call carries: the working tree (tracked files and untracked ones git does not
# ignore) and the carried paths, wheels/ among them.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 2^20 }'; }
wheel_bytes=$(du -cb "$dest"/*.whl | tail -1 | cut -f1)
tree_bytes=$(cd "$root" && git ls-files -z --cached --others --exclude-standard |
    du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((wheel_bytes + tree_bytes))
echo "wheels: $(mib "$wheel_bytes") MiB; working tree: $(mib "$tree_bytes") MiB;" \
    "together $(mib "$total") MiB of the ${carry_limit_mib} MiB a call may carry" \
    "($(mib $((carry_limit_mib * 2**20 - total))) MiB left for a carried-in compile cache)"
((total <= carry_limit_mib * 2**20)) || { echo "fetch_wheels: over the carry limit" >&2; exit 1; }
