#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with what a bare GPU machine lacks to run castbench on the JAX
# backend: Keras and the dependencies of it that the machine does not have, plus castbench's
# own wheel. Run here, with network access to PyPI; carry wheels/ to the GPU machine and run
# scripts/gpu/run_reference.sh there.
#
# The GPU machine has Python 3.12, JAX (CUDA), PyTorch, timm, onnxruntime, pandas, matplotlib
# (so numpy, pillow, packaging), psutil, nvidia-ml-py, pytest and pytest-benchmark, and no
# network. Keras needs absl-py, numpy, rich, namex, h5py, optree, ml-dtypes and packaging;
# rich brings markdown-it-py, mdurl and pygments, optree typing-extensions (PyTorch has it too,
# but a machine without PyTorch may not); JAX already brings ml-dtypes and numpy.
#
# usage: scripts/gpu/fetch_wheels.sh [DEST]   (default: wheels/ in the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$root/wheels}
python=${PYTHON:-python}

# The Keras this checkout runs with, so the GPU run and the CPU reference run share it.
keras_version=$("$python" -c 'from importlib.metadata import version; print(version("keras"))' \
    2>/dev/null || true)
keras=keras${keras_version:+==$keras_version}

mkdir -p "$dest"
rm -f "$dest"/*.whl
# --no-deps: anything pip would add beyond this list (numpy above all) is already there, in a
# version JAX was built against, and must not be shadowed.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    -d "$dest" "$keras" namex optree typing-extensions absl-py rich markdown-it-py mdurl pygments \
    h5py
"$python" -m pip wheel --quiet --no-deps -w "$dest" "$root"
ls -1 "$dest"
du -sh "$dest"
