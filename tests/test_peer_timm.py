"""The real PyTorch + timm peer on the CPU: rows from ``castbench peer timm`` itself, steps that
train what they say they train, and FLOPs counted by PyTorch beside castbench's Keras count.

PyTorch runs in processes of its own: loaded after TensorFlow in one process, its compiler
stack (triton) can crash that process. torch and timm are the optional ``peer`` extra: without
them these tests skip, unless CASTBENCH_REQUIRE_PEER=1 (as ``.ci/run`` sets) makes that a
failure."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from castbench.results import read_rows
from castbench.timing.config import TimingConfig

SIZE = 32

PROBE = """
import json, sys
from castbench.peer.torch_runner import TorchRunner
from castbench.timing.config import TimingConfig
model = TorchRunner(device="cpu").load("mobilenetv2_100")
snapshot = lambda: [p.detach().clone() for p in model.net.parameters()]
before = snapshot()
model.step(TimingConfig("MobileNetV2", %(size)d, 2, mode="infer"))()
infer_changed = sum(bool((a != b).any()) for a, b in zip(before, snapshot()))
train = model.step(TimingConfig("MobileNetV2", %(size)d, 2, mode="train"))
losses = [float(train.function().detach()) for _ in range(8)]  # run: the step's loss
train_changed = sum(bool((a != b).any()) for a, b in zip(before, snapshot()))
from castbench.peer.sweep import PeerStepRunner
from castbench.timing.timer import measure
config = TimingConfig("MobileNetV2", %(size)d, 2, mode="infer", steps=3, warmup=1)
measured = measure(PeerStepRunner(model.step(config), config))
print(json.dumps({"keras_loaded": "keras" in sys.modules,
                  "pipelined": measured.pipelined_images_per_s[0],
                  "timed": len(measured.primary.samples_s),
                  "weights": len(before), "infer_changed": infer_changed,
                  "train_changed": train_changed, "losses": losses,
                  "gflops_96": model.gflops_per_image(96)}))
"""


@pytest.fixture(scope="module")
def peer():
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("timm") is None:
        if os.environ.get("CASTBENCH_REQUIRE_PEER") == "1":
            pytest.fail("CASTBENCH_REQUIRE_PEER=1 but torch or timm is not installed")
        pytest.skip("torch and timm are not installed: pip install 'castbench[peer]'")
    done = subprocess.run([sys.executable, "-c", PROBE % {"size": SIZE}], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_engine_measures_the_peer_without_loading_keras(peer):
    assert peer["keras_loaded"] is False
    assert peer["timed"] == 3 and peer["pipelined"] > 0


def test_a_train_step_updates_the_weights_and_an_infer_step_none(peer):
    assert peer["infer_changed"] == 0
    # Adam moves every weight with a non-zero gradient: all but a few at this tiny size
    assert peer["train_changed"] > 0.9 * peer["weights"], peer
    losses = peer["losses"]
    assert losses[-1] < losses[0]  # one fixed batch: training on it lowers its loss


def test_pytorch_counts_the_flops_keras_counts_within_the_elementwise_part(peer):
    from castbench.flops import forward_flops_per_image
    from castbench.timing.engine import build_for_timing

    keras_model = build_for_timing(TimingConfig("MobileNetV2", 96, 1, mode="infer"))
    keras_gflops = forward_flops_per_image(keras_model) / 1e9
    # convolutions and matmuls are most of the work; Keras's count adds batch norm and
    # activations, a few per cent
    assert 0.85 < peer["gflops_96"] / keras_gflops <= 1.0, (peer["gflops_96"], keras_gflops)


def test_peer_timm_cli_writes_pytorch_rows(peer, tmp_path):
    out = tmp_path / "peer"
    argv = ["peer", "timm", "--backbones", "mobilenetv2", "--size", str(SIZE), "--batch", "2",
            "--steps", "3", "--warmup", "1", "--device", "cpu", "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "castbench", *argv], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(out)
    assert {(r["mode"], r["status"]) for r in rows} == {("train", "ok"), ("infer", "ok")}
    for row in rows:
        assert (row["backend"], row["runtime"], row["step"]) == ("torch", "pytorch", "eager")
        assert row["device"].startswith("cpu:")
        assert len(row["samples_s"]) == 3 and row["step_s_min"] <= row["step_s_median"]
        assert 0 < row["gflops_per_image"] < peer["gflops_96"]  # counted at its own size
        assert row["params_total"] > 2_000_000
