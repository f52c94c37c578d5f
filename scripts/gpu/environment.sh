# Sourced by the GPU scripts, with $root (the repository) and $python set and fail() defined:
# Keras and the rest unpacked onto the import path, the JAX backend, and a check that both
# import.
# Keras and the rest, unpacked onto the import path. The working tree comes first, so the
# castbench code that runs is the checkout's; its wheel adds the installed metadata (the
# version, the pytest plugin's entry point).
shopt -s nullglob
wheels=("$root"/wheels/*.whl)
((${#wheels[@]})) || fail "no wheels in $root/wheels: run scripts/gpu/fetch_wheels.sh first, and carry wheels/"
site=$(mktemp -d)/site
for wheel in "${wheels[@]}"; do
    "$python" -m zipfile -e "$wheel" "$site" || fail "cannot unpack $wheel"
done
export PYTHONPATH=$root:$site${PYTHONPATH:+:$PYTHONPATH}
export KERAS_BACKEND=jax
cd "$root"
"$python" -c "import keras, jax" || fail "keras or jax does not import (see above)"
