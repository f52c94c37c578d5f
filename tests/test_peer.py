"""castbench peer timm without PyTorch: the name map, the sweep's rows through a fake model
runner on a fake clock, the time budget and resume, failures, the missing-extra message, and
the peer folder in castbench compare and castbench plot --peer."""

import sys
import time

import matplotlib
import pytest

from castbench import backbones
from castbench.cli import main
from castbench.compare import compare, load
from castbench.errors import UsageError
from castbench.peer.names import NO_EQUIVALENT, TIMM_NAMES, timm_name
from castbench.peer.sweep import run_peer_sweep
from castbench.results import COLUMNS, ResultsFolder, read_rows
from castbench.timing.config import build_matrix
from castbench.timing.measurement import PIPELINE_ROUNDS, pipeline_depth
from castbench.timing.timer import PlainStep

matplotlib.use("Agg")


def test_every_backbone_has_a_timm_entry_and_only_nasnetmobile_lacks_one():
    assert set(TIMM_NAMES) == set(backbones.names())
    assert [name for name, timm in TIMM_NAMES.items() if timm is None] == ["NASNetMobile"]
    assert timm_name("xception") == "legacy_xception"
    assert timm_name("ResNet101V2") == "resnetv2_101"
    assert timm_name("nasnetmobile") is None


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# The calls the timed steps get with 3 of them and 2 warm-up calls (0, 1): the engine pairs
# each timed slice with a pipelined round of 2 calls, timed first, then pipelined first, ...
TIMED_CALLS = (2, 7, 8)


def step_seconds(batch, mode, call):
    """A fake step: the first call of a configuration compiles for 2 s; then the steady time
    cycles through 1.0, 1.1, 1.2 x a base that grows with the batch."""
    base = (0.010 if mode == "train" else 0.004) * batch
    return base + 2.0 if call == 0 else base * (1 + 0.1 * (call % 3))


class FakeModel:
    params_total, params_trainable = 1000, 900

    def __init__(self, runner, name):
        self.runner, self.name = runner, name

    def step(self, config):
        calls = iter(range(10**6))
        fail = self.runner.fail_batch == config.batch_size

        def run():
            if fail:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            self.runner.advance(step_seconds(config.batch_size, config.mode, next(calls)))
            self.runner.steps += 1

        return PlainStep(run)

    def gflops_per_image(self, input_size):
        return 0.3 * (input_size / 224) ** 2

    def reset_peak_memory(self):
        pass

    def peak_memory_mb(self):
        return 123.0

    def recover(self):
        self.runner.recovered += 1

    def close(self):
        self.runner.closed.append(self.name)


class FakeRunner:
    backend, device, jit_compile = "torch", "gpu:Fake GPU", False

    def __init__(self, fail_batch=None, fail_build=()):
        self.clock = FakeClock()
        self.fail_batch, self.fail_build = fail_batch, fail_build
        self.steps, self.recovered, self.closed, self.loaded = 0, 0, [], []

    def advance(self, seconds):
        self.clock.now += seconds

    def load(self, name):
        if name in self.fail_build:
            raise ValueError(f"no such model {name}")
        self.loaded.append(name)
        return FakeModel(self, name)

    def metadata(self):
        return {"backend": "torch", "backend_version": "0.0-fake", "device": self.device}


def matrix(names=("mobilenetv2", "nasnetmobile"), batches=(2, 4)):
    return build_matrix(list(names), list(batches), ["train", "infer"], 64, steps=3, warmup=2)


def sweep(tmp_path, runner, configs, **kw):
    with pytest.MonkeyPatch.context() as patch:  # the engine's clock and the budget's: one
        patch.setattr("castbench.timing.timer.clock", runner.clock)
        return run_peer_sweep(configs, tmp_path / "peer", runner, ["peer", "timm"],
                              clock=runner.clock, **kw)  # fmt: skip


def test_peer_rows_follow_the_results_schema(tmp_path):
    runner = FakeRunner()
    rows, left = sweep(tmp_path, runner, matrix())
    assert left == [] and runner.loaded == ["mobilenetv2_100"] == runner.closed
    by_key = {row["key"]: row for row in read_rows(tmp_path / "peer")}
    assert len(by_key) == 8
    row = by_key["MobileNetV2|64|4|train|float32|eager|gap|timm"]
    assert (row["backend"], row["device"], row["status"]) == ("torch", "gpu:Fake GPU", "ok")
    assert (row["backbone"], row["input_size"], row["batch_size"]) == ("MobileNetV2", 64, 4)
    assert row["jit_compile"] is False and row["precision"] == "float32"
    assert row["samples_s"] == pytest.approx([0.048, 0.044, 0.048])  # TIMED_CALLS
    assert row["warmup_s"] == pytest.approx([2.04, 0.044])
    assert row["step_s_median"] == pytest.approx(0.048)
    assert row["step_s_min"] == pytest.approx(0.044) and row["step_s_max"] == pytest.approx(0.048)
    assert row["compile_s"] == pytest.approx(2.04 - 0.048)  # first step less the median
    assert row["images_per_s"] == pytest.approx(4 / 0.048)
    assert row["gflops_per_image"] == pytest.approx(0.3 * (64 / 224) ** 2)
    assert row["achieved_gflops_per_s"] == pytest.approx(row["gflops_per_image"] * 3 * 4 / 0.048)
    assert row["epoch_s"] == pytest.approx(row["steps_per_epoch"] * 0.048)
    assert row["steps_per_epoch"] == 1327  # ceil(5,307 / 4)
    assert (row["params_total"], row["params_trainable"], row["step_mem_mb"]) == (
        1000,
        900,
        123.0,
    )
    assert row["step_mem_source"] == "torch"
    for config in matrix(["nasnetmobile"]):
        skipped = by_key[
            f"NASNetMobile|64|{config.batch_size}|{config.mode}|float32|eager|gap|timm"
        ]
        assert (skipped["status"], skipped["error"]) == ("skipped", NO_EQUIVALENT)
        assert skipped["step_s_median"] is None and skipped["backend"] == "torch"
    header = (tmp_path / "peer" / "timing.csv").read_text().splitlines()[0]
    assert header.split(",") == list(COLUMNS)
    run = ResultsFolder(tmp_path / "peer").run_metadata()
    assert run["backend"] == "torch" and run["peer"] == "timm" and len(run["matrix"]) == 8


def test_budget_stops_between_configurations_and_resume_finishes(tmp_path):
    runner = FakeRunner()
    configs = matrix(["mobilenetv2"], [2, 4, 8])  # 6 configurations
    # the first train configuration takes 2.02 + 4 steady steps of ~0.02 s: past a 2 s budget
    rows, left = sweep(tmp_path, runner, configs, budget_s=2.0)
    assert len(rows) == 1 and [c.batch_size for c in left] == [4, 8, 2, 4, 8]
    steps_before = runner.steps
    with pytest.raises(UsageError, match="already holds results"):
        sweep(tmp_path, runner, configs)
    rows, left = sweep(tmp_path, runner, configs, resume=True)
    assert left == [] and len(rows) == 6
    # only the five missing: 2 warm-up + 3 timed steps each, then the engine's pipelined
    # rounds (PIPELINE_ROUNDS rounds of pipeline_depth(3) steps)
    per_config = 2 + 3 + PIPELINE_ROUNDS * pipeline_depth(3)
    assert runner.steps - steps_before == 5 * per_config


def test_out_of_memory_and_build_failures_get_rows_and_the_sweep_goes_on(tmp_path):
    runner = FakeRunner(fail_batch=4, fail_build=("efficientnet_b4",))
    rows, _ = sweep(tmp_path, runner, matrix(["efficientnetb4", "mobilenetv2"]))
    status = {(r["backbone"], r["batch_size"], r["mode"]): r for r in rows}
    oom = status[("MobileNetV2", 4, "train")]
    assert oom["status"] == "oom" and "out of memory" in oom["error"]
    assert status[("MobileNetV2", 2, "infer")]["status"] == "ok"
    assert runner.recovered == 2  # train and infer at bs 4
    built = [r for r in rows if r["backbone"] == "EfficientNetB4"]
    assert len(built) == 4 and {r["status"] for r in built} == {"error"}
    assert (
        built[0]["error"] == "building efficientnet_b4: ValueError: no such model efficientnet_b4"
    )


def test_missing_extra_is_one_line_naming_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    code = main(["peer", "timm", "--backbones", "mobilenetv2", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "pip install 'castbench[peer]'" in err and "torch" in err
    assert not (tmp_path / "p").exists()


def test_bad_peer_input_is_refused_before_pytorch_is_needed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["peer", "timm", "--backbones", "resnet9000"]) == 2
    assert "unknown backbone" in capsys.readouterr().err


class SleepingRunner(FakeRunner):
    """Steps that take real time, for the command, which times with the real clock."""

    def advance(self, seconds):
        time.sleep(0.001)


def test_peer_command_measures_prints_and_plots(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("castbench.peer.torch_runner.TorchRunner", lambda *a, **k: SleepingRunner())
    out = tmp_path / "timm"
    argv = ["peer", "timm", "--backbones", "mobilenetv2", "nasnetmobile", "--size", "64",
            "--batch", "2", "--steps", "3", "--warmup", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0  # a skipped NASNetMobile is not a failure
    printed = capsys.readouterr().out
    assert "no timm equivalent" in printed and "MobileNetV2" in printed
    rows = read_rows(out)
    assert sorted(r["status"] for r in rows) == ["ok", "ok", "skipped", "skipped"]
    assert all(r["step_s_median"] >= 0.001 for r in rows if r["status"] == "ok")
    assert (out / "plots" / "time_per_batch.png").is_file()
    assert main(argv) == 2  # the folder holds results and --resume was not given
    assert "already holds results" in capsys.readouterr().err


def keras_folder(tmp_path, configs):
    """A Keras run of the same configurations, 2x slower than the fake peer's steady steps."""
    folder = ResultsFolder(tmp_path / "keras")
    for config in configs:
        samples = [2 * step_seconds(config.batch_size, config.mode, i) for i in TIMED_CALLS]
        folder.add({"key": config.key, "backbone": config.backbone,
                    "input_size": config.input_size, "batch_size": config.batch_size,
                    "mode": config.mode, "precision": "float32", "backend": "jax",
                    "device": "gpu:Fake GPU", "status": "ok", "step_s_median": sorted(samples)[1],
                    "step_s_std": 0.001,
                    "images_per_s": config.batch_size / sorted(samples)[1],
                    "epoch_s": 1.0, "samples_s": samples})  # fmt: skip
    return folder.path


def test_compare_and_plot_overlay_a_peer_folder(tmp_path):
    configs = matrix()
    sweep(tmp_path, FakeRunner(), configs)
    keras = keras_folder(tmp_path, configs)
    # PyTorch rows are another runtime: never paired with Keras rows unless asked to
    plain = compare(load(keras), load(tmp_path / "peer"))
    assert plain["comparisons"] == [] and len(plain["only_in_new"]) == 4
    across = ("framework",)
    report = compare(load(keras, across), load(tmp_path / "peer", across))
    assert len(report["comparisons"]) == 4  # MobileNetV2's; NASNetMobile has no peer
    assert {round(c["ratio"], 6) for c in report["comparisons"]} == {0.5}
    assert len(report["only_in_base"]) == 4 and report["only_in_new"] == []
    out = tmp_path / "plots"
    code = main(["plot", str(keras), "--peer", str(tmp_path / "peer"), "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "images_per_second.png", "time_per_batch.png", "time_per_epoch.png"]  # fmt: skip


def test_peer_curves_are_dashed_in_the_backbones_colour():
    import matplotlib.pyplot as plt
    import pandas as pd

    from castbench.timing.plots import _overlay_peer

    curves = [("ResNet50", 4, 0.04), ("ResNet50", 2, 0.02), ("VGG16", 2, 1.0)]
    peer = pd.DataFrame([
        {"backbone": name, "batch_size": batch, "step_s_median": median, "backend": "torch"}
        for name, batch, median in curves
    ])  # fmt: skip
    fig, ax = plt.subplots()
    _overlay_peer(ax, peer, "step_s_median", {"ResNet50": "red"})
    curve, legend = ax.get_lines()  # VGG16 is not in the main run: no curve
    assert curve.get_linestyle() == "--" and curve.get_color() == "red"
    assert list(curve.get_xdata()) == [2, 4] and list(curve.get_ydata()) == [0.02, 0.04]
    assert legend.get_label() == "torch peer, same colours"
    plt.close(fig)
