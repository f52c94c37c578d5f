"""The recompile guard on real backends: a clean measurement counts no trace or compile while
timed, and one forced to recompile (the batch's shape changes after warm-up, as a state dtype
or sharding mismatch would) is flagged, not averaged in. Each backend runs in its own process:
Keras picks its backend once, at import."""

import json
import os
import subprocess
import sys

import pytest

FORCE_A_RECOMPILE = """
import json, keras
from castbench.results import measured_row, row_header
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing
from castbench.timing.timer import measure
from castbench.timing.steps.base import FixedBatch

config = TimingConfig("MobileNetV2", 32, 2, mode="infer", steps=4, warmup=1)
model = build_for_timing(config)
header = row_header(config, "cpu", keras.backend.backend())
clean = measured_row(header, measure(StepRunner(model, config)))

runner = StepRunner(model, config)
step, dispatch, calls = runner.step, runner.step.dispatch, [0]
other = FixedBatch.random(TimingConfig("MobileNetV2", 32, 3, mode="infer"), seed=1)

def dispatch_then_change_shape():
    calls[0] += 1
    if calls[0] == config.warmup + 2:  # the second timed step sees a new shape
        step.data = [(other.images,)] if isinstance(step.data, list) else (other.images,)
    return dispatch()

step.dispatch = dispatch_then_change_shape
forced = measured_row(header, measure(runner))
print(json.dumps({name: {k: row.get(k) for k in ("recompiled", "status", "error")}
                  for name, row in (("clean", clean), ("forced", forced))}))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_recompile_while_timed_is_counted_and_flagged(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "CASTBENCH_COMPILE_CACHE": "off"}
    done = subprocess.run([sys.executable, "-c", FORCE_A_RECOMPILE], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert rows["clean"] == {"recompiled": 0, "status": "ok", "error": None}
    assert rows["forced"]["recompiled"] >= 1
    assert rows["forced"]["status"] == "recompiled"
    assert "while the timed steps ran" in rows["forced"]["error"]
