# Sourced by the GPU scripts, with $root (the repository) and $python set and fail() defined:
# the carried wheels (Keras and what it needs beyond the machine's own packages, and
# castbench's wheel) unpacked onto the import path where wheels/ holds any, the JAX backend,
# and a check that both import. The working tree comes first on the path, so the castbench
# code that runs is the checkout's; its wheel adds the installed metadata (the version, the
# pytest plugin's entry point). Without wheels/ the Python in use must have Keras already.
shopt -s nullglob
wheels=("$root"/wheels/*.whl)
site=""
if ((${#wheels[@]})); then
    site=$(mktemp -d)/site
    for wheel in "${wheels[@]}"; do
        "$python" -m zipfile -e "$wheel" "$site" || fail "cannot unpack $wheel"
    done
fi
export PYTHONPATH=$root${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}
export KERAS_BACKEND=jax
cd "$root"
"$python" -c "import keras, jax" ||
    fail "keras or jax does not import (see above): run scripts/gpu/fetch_wheels.sh here, and carry wheels/"
