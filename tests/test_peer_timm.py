"""The real PyTorch + timm peer on the CPU: rows from ``castbench peer timm`` itself, steps that
train what they say they train, and FLOPs counted by PyTorch beside castbench's Keras count.

torch and timm are the optional ``peer`` extra: without them these tests skip, unless
CASTBENCH_REQUIRE_PEER=1 (as ``.ci/run`` sets) makes that a failure."""

import os

import pytest

from castbench.cli import main
from castbench.results import read_rows
from castbench.timing.config import TimingConfig

SIZE = 32


@pytest.fixture(scope="module")
def runner():
    try:
        from castbench.peer.torch_runner import TorchRunner

        return TorchRunner(device="cpu")
    except Exception as exc:  # castbench's UsageError naming the missing extra
        if os.environ.get("CASTBENCH_REQUIRE_PEER") == "1":
            pytest.fail(f"CASTBENCH_REQUIRE_PEER=1 but {exc}")
        pytest.skip(str(exc))


def parameters(model):
    return [p.detach().clone() for p in model.net.parameters()]


def test_a_train_step_updates_the_weights_and_an_infer_step_none(runner):
    model = runner.load("mobilenetv2_100")
    before = parameters(model)
    model.step(TimingConfig("MobileNetV2", SIZE, 2, mode="infer"))()
    assert all((a == b).all() for a, b in zip(before, parameters(model), strict=True))
    train = model.step(TimingConfig("MobileNetV2", SIZE, 2, mode="train"))
    losses = [float(train().detach()) for _ in range(8)]
    changed = [bool((a != b).any()) for a, b in zip(before, parameters(model), strict=True)]
    # Adam moves every weight with a non-zero gradient: all but a few at this tiny size
    assert sum(changed) > 0.9 * len(changed), (sum(changed), len(changed))
    assert losses[-1] < losses[0]  # one fixed batch: training on it lowers its loss
    model.close()


def test_pytorch_counts_the_flops_keras_counts_within_the_elementwise_part(runner):
    from castbench.flops import forward_flops_per_image
    from castbench.timing.engine import build_for_timing

    model = runner.load("mobilenetv2_100")
    torch_gflops = model.gflops_per_image(96)
    model.close()
    keras_model = build_for_timing(TimingConfig("MobileNetV2", 96, 1, mode="infer"))
    keras_gflops = forward_flops_per_image(keras_model) / 1e9
    # convolutions and matmuls are most of the work; Keras's count adds batch norm and
    # activations, a few per cent
    assert 0.85 < torch_gflops / keras_gflops <= 1.0, (torch_gflops, keras_gflops)


def test_peer_timm_cli_writes_pytorch_rows(runner, tmp_path, capsys):
    out = tmp_path / "peer"
    argv = ["peer", "timm", "--backbones", "mobilenetv2", "--size", str(SIZE), "--batch", "2",
            "--steps", "3", "--warmup", "1", "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = read_rows(out)
    assert {(r["mode"], r["status"]) for r in rows} == {("train", "ok"), ("infer", "ok")}
    for row in rows:
        assert (row["backend"], row["runtime"], row["step"]) == ("torch", "pytorch", "eager")
        assert row["device"].startswith("cpu:")
        assert len(row["samples_s"]) == 3 and row["step_s_min"] <= row["step_s_median"]
        assert row["gflops_per_image"] > 0 and row["params_total"] > 2_000_000
