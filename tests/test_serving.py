"""Serving runtimes: export through Keras, the correctness gate, runtime rows in the timing
matrix, and one-line errors. Exports use a toy network (or MobileNetV2 at 32 px) so each takes
seconds; tests that need a runtime skip where the serve extra is not installed."""

import importlib.util

import keras
import numpy as np
import pandas as pd
import pytest

from castbench.cli import main
from castbench.compare import load
from castbench.errors import UsageError
from castbench.results import ResultsFolder
from castbench.serving import bench as bench_module
from castbench.serving import registry
from castbench.serving.bench import ServingBench
from castbench.serving.export import (
    Artifact,
    ExportError,
    check_onnx_inputs,
    export_model,
    record_path,
)
from castbench.serving.gate import FLOAT32_TOLERANCE, max_abs_diff
from castbench.serving.report import latency_table
from castbench.serving.sessions import open_session
from castbench.timing.config import TimingConfig, build_matrix


def installed(runtime: str) -> bool:
    try:
        registry.require_runtime(runtime)
    except registry.MissingExtra:
        return False
    return True


def needs(runtime: str):
    return pytest.mark.skipif(not installed(runtime), reason=f"{runtime}: {registry.EXTRA_HINT}")


@pytest.fixture(scope="module")
def toy_model() -> keras.Model:
    """Conv + batch norm + GAP + sigmoid at 32 px: outputs that differ from image to image, so
    a runtime that computed something else could not pass the gate."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="defect")(x)
    return keras.Model(inputs, outputs, name="toy_gap")


def config(**fields) -> TimingConfig:
    return TimingConfig(**{"backbone": "MobileNetV2", "input_size": 32, "batch_size": 2,
                           "mode": "infer", **fields})  # fmt: skip


def test_keras_keys_stay_and_runtime_keys_carry_runtime_and_threads():
    assert config().key == "MobileNetV2|32|2|infer|float32|auto|gap"
    assert config(runtime="onnxruntime").key.endswith("|gap|onnxruntime")
    assert config(runtime="litert", threads=1).key.endswith("|gap|litert:t1")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"runtime": "onnxruntime", "mode": "train"}, "times inference only"),
        ({"runtime": "openvino", "precision": "mixed_float16"}, "float32 artifacts only"),
        ({"runtime": "tensorrt"}, "unknown runtime 'tensorrt'"),
        ({"runtime": "litert", "threads": 0}, "threads must be a positive"),
    ],
)
def test_impossible_runtime_configurations_are_usage_errors(fields, message):
    with pytest.raises(UsageError, match=message):
        config(**fields)


def test_matrix_runs_every_runtime_of_a_backbone_on_one_model():
    matrix = build_matrix(["mobilenetv2", "vgg16"], [8, 1], ["infer"], 32,
                          runtimes=["keras", "litert"])  # fmt: skip
    assert [(c.backbone, c.runtime, c.batch_size) for c in matrix[:4]] == [
        ("MobileNetV2", "keras", 1), ("MobileNetV2", "keras", 8),
        ("MobileNetV2", "litert", 1), ("MobileNetV2", "litert", 8),
    ]  # fmt: skip
    assert len({c.model_key for c in matrix[:4]}) == 1


def test_timing_train_with_a_serving_runtime_is_one_line_exit_2(capsys, tmp_path):
    code = main(["timing", "--backbones", "mobilenetv2", "--runtime", "onnxruntime",
                 "--mode", "train", "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "onnxruntime runtime times inference only" in err


def test_missing_runtime_is_one_line_exit_2_naming_the_extra(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name: None if name == "openvino" else real(name))  # fmt: skip
    code = main(["timing", "--backbones", "mobilenetv2", "--runtime", "keras", "openvino",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert 'the openvino runtime needs the openvino package: pip install "castbench[serve]"' in err
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_exporters_are_checked_for_the_backend_that_will_run_them(monkeypatch):
    assert registry.format_packages("onnx", "tensorflow") == ("tensorflow", "tf2onnx", "onnx")
    assert registry.format_packages("onnx", "jax") == ("jax2onnx", "onnx")
    assert "tensorflow" in registry.format_packages("openvino", "jax")  # through jax2tf
    with pytest.raises(registry.MissingExtra, match="tensorflow or torch backend only"):
        registry.format_packages("litert", "jax")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    real = importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name: None if name == "jax2onnx" else real(name))  # fmt: skip
    with pytest.raises(registry.MissingExtra, match="jax2onnx package: pip install jax2onnx"):
        registry.require_format("onnx")


def test_unexportable_backbone_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    def refuse(self, filepath, format, **kwargs):
        raise NotImplementedError("op FancyPool has no converter\nlong converter log")

    monkeypatch.setattr(keras.Model, "export", refuse)
    code = main(["export", "MobileNetV2", "--size", "32", "--format", "litert",
                 "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == ("castbench: error: mobilenetv2_gap cannot be exported to litert: "
                   "op FancyPool has no converter")  # fmt: skip


class OffsetSession:
    """Stands in for a runtime that computes Keras's outputs plus ``offset``."""

    def __init__(self, model, offset):
        self.model, self.offset = model, offset
        self.version, self.threads = "test", 1

    def run(self, images):
        return np.asarray(self.model.predict_on_batch(images)) + self.offset


@pytest.mark.parametrize("offset, status", [(0.0, "ok"), (3 * FLOAT32_TOLERANCE, "mismatch")])
def test_gate_times_only_runtimes_that_match_keras(toy_model, monkeypatch, tmp_path, offset,
                                                   status):  # fmt: skip
    artifact = Artifact("onnx", tmp_path / "toy.onnx", (), 1.5, 2.0, 32, {})
    monkeypatch.setattr(
        bench_module, "require_runtime", lambda name: registry.SERVING_RUNTIMES[name]
    )
    monkeypatch.setattr(bench_module, "export_model", lambda model, fmt, out: artifact)
    monkeypatch.setattr(bench_module, "open_session",
                        lambda *args: OffsetSession(toy_model, offset))  # fmt: skip
    serving = ServingBench(toy_model)
    try:
        row = serving.measure(config(runtime="onnxruntime", steps=2, warmup=1),
                              gflops_per_image=None)  # fmt: skip
    finally:
        serving.close()
    assert row["status"] == status
    assert row["max_abs_diff"] == pytest.approx(offset, abs=1e-7)
    assert row["keras_output_range"] > 1e-3  # the toy's outputs differ per image
    assert row["artifact_mb"] == 1.5 and row["export_s"] >= 2.0
    assert ("step_s_median" in row) == (status == "ok")
    if status == "mismatch":
        assert "over the float32 tolerance 0.0001" in row["error"]


def test_max_abs_diff_refuses_other_shapes():
    assert max_abs_diff(np.ones((2, 1)), np.zeros((2, 1))) == 1.0
    with pytest.raises(ValueError, match="shape"):
        max_abs_diff(np.ones((2, 1)), np.ones((1, 2)))


@pytest.mark.parametrize("runtime", ["onnxruntime", "litert", "openvino"])
def test_toy_model_exports_and_matches_keras_in_each_runtime(toy_model, tmp_path, runtime):
    if not installed(runtime):
        pytest.skip(f"{runtime}: {registry.EXTRA_HINT}")
    artifact = export_model(toy_model, registry.SERVING_RUNTIMES[runtime].format, tmp_path)
    assert all(f.is_file() for f in artifact.files)
    on_disk = sum(f.stat().st_size for f in artifact.files)
    assert artifact.size_mb == pytest.approx(on_disk / 2**20)
    record = record_path(artifact.path, artifact.format).read_text()
    assert '"keras": "3.' in record and f'"size_mb": {artifact.size_mb}' in record
    session = open_session(runtime, artifact, batch_size=3, threads=1)
    images = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    reference = toy_model.predict_on_batch(images)
    assert np.ptp(reference) > 1e-3
    assert max_abs_diff(session.run(images), reference) <= FLOAT32_TOLERANCE
    assert session.threads == 1 and session.version


@needs("onnxruntime")
def test_timing_command_writes_runtime_rows_at_batch_size_1(tmp_path):
    out = tmp_path / "run"
    code = main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--batch", "1",
                 "--runtime", "keras", "onnxruntime", "--threads", "1", "--steps", "2",
                 "--warmup", "1", "--isolate", "none", "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = {row["runtime"]: row for row in ResultsFolder(out).rows}
    assert rows["keras"]["key"] == "MobileNetV2|32|1|infer|float32|auto|gap"
    assert rows["keras"]["runtime_version"] == keras.__version__
    served = rows["onnxruntime"]
    assert served["status"] == "ok" and served["batch_size"] == 1 and served["threads"] == 1
    assert served["max_abs_diff"] <= FLOAT32_TOLERANCE
    assert served["export_s"] > 0 and served["artifact_mb"] > 1 and served["step_s_median"] > 0
    assert served["runtime_version"].startswith("1.")
    assert (out / "plots" / "latency_by_runtime.png").stat().st_size > 10_000
    assert "| MobileNetV2 | 32 |" in (out / "plots" / "latency_by_runtime.md").read_text()
    labels = sorted(entry.label for entry in load(out))
    assert labels == ["MobileNetV2 32px bs 1 infer float32",
                      "MobileNetV2 32px bs 1 infer float32 onnxruntime"]  # fmt: skip


def test_latency_table_divides_the_best_runtime_by_keras():
    rows = pd.DataFrame([
        {"backbone": "A", "input_size": 32, "batch_size": 1, "status": "ok", "runtime": r,
         "step_s_median": s}
        for r, s in [("keras", 0.010), ("onnxruntime", 0.004), ("litert", 0.002)]
    ] + [{"backbone": "A", "input_size": 32, "batch_size": 1, "status": "mismatch",
          "runtime": "openvino", "step_s_median": 0.001}])  # fmt: skip
    table = latency_table(rows, 1).iloc[0]
    assert table["best runtime"] == "litert"
    assert table["best / keras"] == pytest.approx(0.2)
    assert "openvino" not in table  # a mismatched row has no latency


@needs("onnxruntime")
def test_onnx_file_that_needs_more_than_the_image_is_an_export_error(tmp_path):
    from onnx import TensorProto, helper, save

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3])
    mean = helper.make_tensor_value_info("normalization/Sub/y:0", TensorProto.FLOAT, [3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Sub", ["image", "normalization/Sub/y:0"],
                                                ["out"])], "g", [image, mean], [out])  # fmt: skip
    save(helper.make_model(graph), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=r"left 1 constant\(s\) as inputs .*Sub/y:0"):
        check_onnx_inputs(tmp_path / "m.onnx", "toy")
