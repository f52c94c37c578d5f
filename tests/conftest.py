"""Shared test set-up: a quiet, deterministic, CPU-only Keras."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Under pytest-xdist each worker has PYTEST_XDIST_* in its environment. A test that starts
# `pytest bench` starts a run of its own, and pytest-benchmark turns itself off in any process
# that inherits a worker's id; xdist itself reads the worker's id from its own channel.
for _name in [name for name in os.environ if name.startswith("PYTEST_XDIST_")]:
    del os.environ[_name]
