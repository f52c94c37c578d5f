"""Profiler traces: folder names, writability checks, and a TensorFlow trace of a tiny model."""

import keras
import pytest

from castbench.cli import main
from castbench.errors import UsageError
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing
from castbench.timing.measurement import PIPELINE_ROUNDS, pipeline_depth
from castbench.timing.profiling import check_writable, folder_name, trace_files
from castbench.timing.timer import measure


def test_folder_names_are_portable_and_distinct():
    keys = ["MobileNetV2|32|2|train|float32|auto|gap",
            "MobileNetV2|32|2|train|float32|auto|gap|mirrored:r2"]  # fmt: skip
    names = [folder_name(k) for k in keys]
    assert names[0] == "MobileNetV2_32_2_train_float32_auto_gap"
    assert len(set(names)) == 2 and all("|" not in n and ":" not in n for n in names)


def test_an_unwritable_profile_folder_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot write profiler traces"):
        check_writable(blocker / "traces")
    assert check_writable(tmp_path / "new" / "traces").is_dir()


def test_cli_refuses_an_unwritable_profile_folder_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--out",
                 str(tmp_path / "out"), "--profile", str(blocker / "traces")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot write profiler traces" in err[0]
    assert not (tmp_path / "out" / "timing.json").exists()


def test_measure_traces_after_the_timed_steps(tmp_path):
    config = TimingConfig("mobilenetv2", 32, 2, "infer", steps=2, warmup=1,
                          profile=str(tmp_path))  # fmt: skip
    runner = StepRunner(build_for_timing(config), config)
    calls = []
    compiled = runner.steps["compiled"]

    class Counted:  # the compiled step, counting its calls
        kind = "compiled"
        compile, finish = compiled.compile, compiled.finish

        def __call__(self):
            calls.append(1)
            compiled()

    runner.step = runner.steps["compiled"] = Counted()
    measured = measure(runner)
    keras.backend.clear_session()
    assert len(measured.primary.samples_s) == 2  # the traced steps are not timed
    # warm-up, timed, pipelined rounds, traced
    assert len(calls) == 1 + 2 + PIPELINE_ROUNDS * pipeline_depth(2) + 3
    assert measured.extra["profile_dir"] == str(tmp_path / folder_name(config.key))
    assert any(p.name.endswith(".xplane.pb") for p in trace_files(measured.extra["profile_dir"]))
