"""Keras on PyTorch (``KERAS_BACKEND=torch``, in a process of its own: Keras picks its backend
once, at import). The compiled step is Keras's own train / predict function, called as ``fit``
calls it; the API step adds ``train_on_batch``'s per-call work. PyTorch is the optional
``peer`` extra: without it this skips, unless CASTBENCH_REQUIRE_PEER=1 (as ``.ci/run`` sets)."""

import os
import subprocess
import sys

import pytest

from castbench.results import read_rows

ARGS = ["timing", "--backbones", "mobilenetv2", "--size", "32", "--batch", "2", "--mode",
        "train", "infer", "--steps", "6", "--warmup", "2", "--step", "both", "--isolate",
        "none", "--no-plots"]  # fmt: skip

TRAINS = """
import numpy as np, keras
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing
config = TimingConfig("MobileNetV2", 32, 2, mode="train", step="compiled")
model = build_for_timing(config)
runner = StepRunner(model, config)
before = [np.array(v) for v in model.trainable_variables]
runner.step()
after = [np.array(v) for v in model.trainable_variables]
print(type(runner.step).__name__, sum(not np.array_equal(a, b) for a, b in zip(before, after)),
      len(before))
"""


@pytest.fixture(scope="module")
def torch_env(torch_installed):
    return {**os.environ, "KERAS_BACKEND": "torch"}


def test_torch_rows_time_both_step_kinds_apart(torch_env, tmp_path):
    out = tmp_path / "torch"
    done = subprocess.run([sys.executable, "-m", "castbench", *ARGS, "--out", str(out)],
                          capture_output=True, text=True, env=torch_env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(out)
    assert {r["mode"] for r in rows} == {"train", "infer"}
    for row in rows:
        assert (row["status"], row["backend"], row["step"]) == ("ok", "torch", "compiled"), row
        compiled, api = row["compiled_step_s_median"], row["api_step_s_median"]
        assert compiled > 0 and api > 0 and compiled != api
        # the difference of two measured medians, not a constant
        assert row["framework_overhead_ms"] == pytest.approx((api - compiled) * 1e3)


def test_the_torch_compiled_step_trains_the_models_weights(torch_env):
    done = subprocess.run([sys.executable, "-c", TRAINS], capture_output=True, text=True,
                          env=torch_env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    kind, changed, total = done.stdout.split()[-3:]
    assert kind == "TrainerFunctionStep"
    assert int(changed) > 0.9 * int(total), done.stdout
