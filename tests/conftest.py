"""Shared test set-up: a quiet, deterministic, CPU-only Keras."""

import importlib.util
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Under pytest-xdist each worker has PYTEST_XDIST_* in its environment. A test that starts
# `pytest bench` starts a run of its own, and pytest-benchmark turns itself off in any process
# that inherits a worker's id; xdist itself reads the worker's id from its own channel.
for _name in [name for name in os.environ if name.startswith("PYTEST_XDIST_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def torch_installed() -> None:
    """PyTorch (the optional ``peer`` extra), or a skip; with CASTBENCH_REQUIRE_PEER=1 (as
    ``.ci/run`` sets) its absence fails instead."""
    if importlib.util.find_spec("torch") is None:
        if os.environ.get("CASTBENCH_REQUIRE_PEER") == "1":
            pytest.fail("CASTBENCH_REQUIRE_PEER=1 but torch is not installed")
        pytest.skip("torch is not installed: pip install 'castbench[peer]'")
