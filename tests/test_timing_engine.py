"""The engine on a real (tiny) model: the rows it writes and the CLI around it."""

import json

import keras
import pandas as pd
import pytest

from castbench.cli import main
from castbench.results import ResultsFolder, read_rows
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing
from castbench.timing.measurement import PIPELINE_ROUNDS
from castbench.timing.sweep import run_sweep
from castbench.timing.timer import measure


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("timing") / "run"
    code = main(["timing", "--backbones", "mobilenetv2", "--batch", "2", "4", "--size", "32",
                 "--steps", "3", "--warmup", "1", "--out", str(out), "--json"])  # fmt: skip
    return code, out


def test_cli_writes_ok_rows_with_spread_and_correct_epochs(tiny_run):
    code, out = tiny_run
    assert code == 0
    rows = read_rows(out)
    assert [(r["batch_size"], r["mode"]) for r in rows] == [
        (2, "train"), (4, "train"), (2, "infer"), (4, "infer"),
    ]  # fmt: skip
    for row in rows:
        assert row["status"] == "ok" and row["error"] is None
        assert len(row["samples_s"]) == 3 and len(row["warmup_s"]) == 1
        assert row["step_s_min"] <= row["step_s_median"] <= row["step_s_max"]
        assert row["steps_per_epoch"] == -(-5307 // row["batch_size"])
        assert row["epoch_s"] == pytest.approx(row["steps_per_epoch"] * row["step_s_median"])
        assert row["images_per_s"] == pytest.approx(row["batch_size"] / row["step_s_median"])
        assert row["compile_s"] >= 0 and row["first_step_s"] >= row["compile_s"]
        assert row["params_total"] > 2_000_000 and row["gflops_per_image"] > 0
        assert row["peak_rss_mb"] > 100
        assert row["nvml_gpu_mem_used_mb"] is None  # no GPU here: empty, not an error
        # one step kind by default: the compiled one, with nothing of the API step's
        assert row["step"] == "compiled" and set(row["step_samples_s"]) == {"compiled"}
        assert row["compiled_step_s_median"] == row["step_s_median"]
        assert row["api_step_s_median"] is None and row["framework_overhead_ms"] is None
        assert row["recompiled"] == 0
        # probes over the three timed steps, not the compile the first step paid for
        assert sum(row["samples_s"]) <= row["probe_window_s"] < row["first_step_s"]
        assert row["pipeline_depth"] == 2 and row["images_per_s_pipelined"] > 0
        assert len(row["step_samples_s"]["compiled"]["pipelined_s"]) == PIPELINE_ROUNDS
        assert row["pct_of_peak"] > 0
        assert row["matmul_precision"] == "default"  # TensorFlow's TF32 setting, left on
    metadata = json.loads((out / "run.json").read_text())
    assert metadata["backend"] == "tensorflow" and "--size 32" in metadata["command"]
    frame = pd.read_csv(out / "timing.csv")
    assert list(frame["status"]) == ["ok"] * 4


def test_cli_draws_three_plots(tiny_run):
    _, out = tiny_run
    for stem in ("time_per_batch", "time_per_epoch", "images_per_second"):
        assert (out / "plots" / f"{stem}.png").stat().st_size > 10_000
        assert (out / "plots" / f"{stem}.svg").exists()


def test_plot_command_overlays_the_seed(tiny_run, tmp_path):
    _, out = tiny_run
    assert main(["plot", str(out), "--out", str(tmp_path), "--seed"]) == 0
    assert (tmp_path / "time_per_batch.png").exists()


def test_existing_results_need_resume(tiny_run, capsys):
    _, out = tiny_run
    assert main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["timing", "--backbones", "nope"],
        ["timing", "--batch", "0"],
        ["timing", "--backbones", "inceptionv3", "--size", "32"],
    ],
)
def test_bad_timing_input_exits_2_before_measuring(argv, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_both_step_kinds_share_one_compile_and_each_is_timed_once():
    """--step both: the row describes the compiled step and carries the API step beside it; the
    API step runs the executable the compiled step built (TensorFlow traces it once)."""
    from castbench.timing.recompile import _tf_traces

    config = TimingConfig("mobilenetv2", 32, 4, mode="infer", steps=4, warmup=1, step="both")
    model = build_for_timing(config)
    runner = StepRunner(model, config)
    assert list(runner.steps) == ["compiled", "api"]
    measurement = measure(runner)
    assert set(measurement.steps) == {"compiled", "api"}
    assert measurement.primary.kind == "compiled"
    assert measurement.recompiles == 0
    assert _tf_traces(model) == 1  # one trace for both kinds, none while timed
    assert measurement.framework_overhead_ms == pytest.approx(
        (measurement.steps["api"].median - measurement.steps["compiled"].median) * 1e3
    )
    assert not measurement.steps["api"].pipelined_s  # pipelined rounds: the row's kind only
    keras.backend.clear_session()


def test_a_failing_configuration_becomes_an_error_row_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from castbench.timing import sweep

    real_measure = sweep.measure

    def flaky(runner, *args):
        if runner.config.batch_size == 2:
            raise RuntimeError("simulated failure\nwith detail")
        return real_measure(runner, *args)

    monkeypatch.setattr(sweep, "measure", flaky)
    configs = [TimingConfig("mobilenetv2", 32, b, "infer", steps=2, warmup=1) for b in (2, 4)]
    rows = run_sweep(configs, ResultsFolder(tmp_path))
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["error"] == "RuntimeError: simulated failure"
    assert rows[0]["params_total"] == rows[1]["params_total"]


def test_resume_measures_only_what_is_missing(tmp_path):
    folder = ResultsFolder(tmp_path)
    configs = [TimingConfig("mobilenetv2", 32, b, "infer", steps=2, warmup=1) for b in (2, 4)]
    run_sweep(configs[:1], folder)
    first = read_rows(tmp_path)[0]
    written = run_sweep(configs, ResultsFolder(tmp_path), resume=True)
    assert [r["batch_size"] for r in written] == [4]
    rows = read_rows(tmp_path)
    assert len(rows) == 2 and rows[0]["measured_at"] == first["measured_at"]


def test_measured_epoch_runs_through_the_input_pipeline(tmp_path):
    from castbench.data import generate

    data = generate(tmp_path / "cast", n_train=20, n_test=4, seed=3)
    out = tmp_path / "run"
    code = main(["timing", "--backbones", "mobilenetv2", "--batch", "4", "--size", "32",
                 "--mode", "train", "--steps", "2", "--warmup", "1", "--data", str(data),
                 "--epoch", "--aug", "additional", "--isolate", "none", "--no-plots",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    row = read_rows(out)[0]
    assert row["n_train"] == 16  # 20 training images less the 0.2 validation split
    assert row["steps_per_epoch"] == 4
    assert 0 < row["data_wait_s"] < row["epoch_measured_s"]
    assert row["data_wait_fraction"] == pytest.approx(row["data_wait_s"] / row["epoch_measured_s"])


def test_unknown_augmentation_preset_is_exit_2(capsys):
    assert main(["timing", "--backbones", "mobilenetv2", "--epoch", "--aug", "sparkle"]) == 2
    assert "sparkle" in capsys.readouterr().err
