"""One seed, the same random initial weights, on every backend; and under JAX or PyTorch the
seeding leaves TensorFlow unloaded even where it is installed (Keras's own
``keras.utils.set_random_seed`` imports it to seed it). Each backend in a process of its own:
Keras picks its backend once, at import."""

import os
import subprocess
import sys

import pytest

SEEDED_BUILDS = """
import random, sys
import numpy as np
from castbench.models import build_model
from castbench.runtime import set_random_seed
from castbench.spec import ModelSpec

set_random_seed(3)
assert random.random() == random.Random(3).random()
assert np.random.rand() == np.random.RandomState(3).rand()
spec = ModelSpec("MobileNetV2", 32)
first, again, other = (build_model(spec, seed).get_weights() for seed in (3, 3, 4))
assert all(np.array_equal(a, b) for a, b in zip(first, again)), "one seed, two sets of weights"
assert not all(np.array_equal(a, b) for a, b in zip(first, other)), "two seeds, one set"
print(" ".join(name for name in ("tensorflow", "jax", "torch") if name in sys.modules))
"""


def _loaded_frameworks(backend: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", SEEDED_BUILDS], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return set(done.stdout.split())


def test_a_jax_process_seeds_without_loading_tensorflow():
    pytest.importorskip("tensorflow")  # what is checked: installed, yet not loaded
    assert "tensorflow" not in _loaded_frameworks("jax")


def test_a_torch_process_seeds_without_loading_tensorflow(torch_installed):
    pytest.importorskip("tensorflow")
    loaded = _loaded_frameworks("torch")
    assert "torch" in loaded and "tensorflow" not in loaded


def test_the_tensorflow_backend_seeds_tensorflow_as_keras_does():
    pytest.importorskip("tensorflow")
    assert "tensorflow" in _loaded_frameworks("tensorflow")
