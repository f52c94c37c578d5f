"""Serving runtimes: export through Keras, the correctness gate, runtime rows in the timing
matrix, reused exports, and one-line errors. Exports use a toy network (or MobileNetV2 at 32 px)
so each takes seconds; tests that need a runtime skip where the serve extra is not installed."""

import importlib.util
import json
from pathlib import Path

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
from castbench.serving.artifacts import record_path
from castbench.serving.bench import ServingBench
from castbench.serving.export import Artifact, ExportError, check_onnx_inputs, export_model
from castbench.serving.gate import (
    JUDGEABLE,
    QUANTIZED_SPREAD,
    gate_batch,
    judge,
    max_abs_diff,
)
from castbench.serving.outputs import with_logit
from castbench.serving.report import latency_table
from castbench.serving.sessions import PrecisionUnavailable, open_session
from castbench.timing.config import TimingConfig, build_matrix


def installed(runtime: str, precision: str = "float32") -> bool:
    try:
        registry.require_runtime(runtime, precision)
    except registry.MissingExtra:
        return False
    return True


def needs(runtime: str):
    return pytest.mark.skipif(not installed(runtime), reason=f"{runtime}: {registry.EXTRA_HINT}")


@pytest.fixture(scope="module")
def toy_model() -> keras.Model:
    """Conv + batch norm + pooling to 4 x 4 + flatten + the sigmoid head at 32 px: logits that
    differ from image to image by far more than the tolerance, so the gate can judge it."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.AveragePooling2D(8)(x)
    x = keras.layers.Flatten()(x)
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
        (
            {"runtime": "openvino", "precision": "mixed_float16"},
            "the openvino runtime runs float32, bfloat16, float16, int8, not mixed_float16",
        ),
        (
            {"runtime": "onnxruntime", "precision": "float16"},
            "onnxruntime runtime runs float32, int8, not float16: its CPU execution provider "
            "computes float16 nodes in float32 between casts",
        ),
        ({"runtime": "litert", "precision": "bfloat16"}, "runs float32, float16, int8, not bf"),
        ({"runtime": "keras", "precision": "float16"}, "float16 is a serving runtime's"),
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
        ("MobileNetV2", "keras", 1), ("MobileNetV2", "litert", 1),
        ("MobileNetV2", "keras", 8), ("MobileNetV2", "litert", 8),
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
    """Stands in for a runtime that computes Keras's logits plus ``offset``."""

    def __init__(self, model, offset):
        self.served, self.offset = with_logit(model), offset
        self.version, self.threads, self.settings = "test", 1, "none"

    def run(self, images):
        outputs = self.served.predict_on_batch(images)
        return {**outputs, "logit": np.asarray(outputs["logit"]) + self.offset}


def fake_runtime(monkeypatch, model, offset, artifact):
    monkeypatch.setattr(
        bench_module, "require_runtime", lambda name, *rest: registry.SERVING_RUNTIMES[name]
    )
    monkeypatch.setattr(bench_module, "export_model", lambda *args: artifact)
    monkeypatch.setattr(bench_module, "open_session",
                        lambda *args: OffsetSession(model, offset))  # fmt: skip


@pytest.mark.parametrize("offset, status", [(0.0, "ok"), (1e-3, "mismatch")])
def test_gate_times_only_runtimes_that_match_keras(toy_model, monkeypatch, tmp_path, offset,
                                                   status):  # fmt: skip
    fake_runtime(monkeypatch, toy_model, offset,
                 Artifact("onnx", tmp_path / "toy.onnx", (), 1.5, 2.0, 32, {}))  # fmt: skip
    serving = ServingBench(toy_model)
    try:
        row = serving.measure(config(runtime="onnxruntime", batch_size=1, steps=2, warmup=1),
                              gflops_per_image=None)  # fmt: skip
    finally:
        serving.close()
    assert row["status"] == status
    assert row["max_abs_diff"] == pytest.approx(offset, abs=1e-6)
    # bs 1: the gate still compares 8 images, whose logits differ enough to judge
    assert row["gate_output_range"] >= JUDGEABLE * row["gate_tolerance"]
    assert 0 < row["gate_tolerance"] < 1e-3 / 3  # 1e-4 of logits under 1 in magnitude
    assert row["max_rel_diff"] == pytest.approx(row["max_abs_diff"] / row["gate_output_range"])
    assert row["artifact_mb"] == 1.5 and row["export_s"] == 2.0 and row["session_s"] >= 0
    assert ("step_s_median" in row) == (status == "ok")
    if status == "mismatch":
        assert "over the tolerance " in row["error"] and "of the largest logit" in row["error"]


def test_gate_is_ungated_where_keras_logits_barely_differ(toy_model, monkeypatch, tmp_path):
    """A model whose logits are the same for every image (its head's kernel zeroed) is timed
    but not called ok: any artifact would agree with it."""
    flat = keras.models.clone_model(toy_model)
    flat.set_weights(toy_model.get_weights())
    head = flat.get_layer("defect")
    head.set_weights([np.zeros_like(head.get_weights()[0]), head.get_weights()[1]])
    fake_runtime(monkeypatch, flat, 0.0,
                 Artifact("onnx", tmp_path / "t.onnx", (), 1.0, 1.0, 32, {}))  # fmt: skip
    serving = ServingBench(flat)
    try:
        row = serving.measure(config(runtime="onnxruntime", steps=2, warmup=1), None)
    finally:
        serving.close()
    assert row["status"] == "ungated" and row["step_s_median"] > 0
    assert row["gate_output_range"] == 0 and "not verified" in row["error"]


def test_quantized_logits_must_follow_the_images_better_than_any_constant():
    reference = np.array([[0.0], [1.0], [4.0]])
    assert judge(reference + 1.9, reference, "int8").status == "ok"
    assert judge(reference + 2.1, reference, "int8").status == "mismatch"
    midrange = np.full_like(reference, 2.0)  # the best constant: off by half the spread
    assert judge(midrange + 1e-9, reference, "int8").status == "mismatch"
    assert judge(reference + 5e-4, reference, "float32").status == "mismatch"  # 1e-4 of 4


def test_quantized_random_weights_that_miss_are_ungated_never_ok_and_float32_still_fails():
    reference = np.array([[0.001], [0.006], [0.011]])
    missed = judge(reference + 0.007, reference, "int8", random_weights=True)
    assert missed.status == "ungated" and missed.max_abs_diff > missed.tolerance
    assert "int8 of a model with random weights is not judged" in missed.error("openvino")
    assert judge(reference + 0.001, reference, "int8", random_weights=True).status == "ok"
    assert judge(reference + 0.007, reference, "int8").status == "mismatch"  # trained weights
    assert judge(reference * np.nan, reference, "int8", random_weights=True).status == "mismatch"
    assert judge(reference + 0.007, reference, "float32", random_weights=True).status == "mismatch"


def test_judge_decides_mismatch_before_spread_at_any_scale():
    reference = np.array([[0.0], [1.0]])
    assert judge(reference, reference).tolerance == pytest.approx(1e-4)
    assert judge(reference + 5e-5, reference).status == "ok"
    assert judge(reference + 2e-4, reference).status == "mismatch"
    tiny = reference * 1e-12  # vanishing random-weight features: judged all the same
    assert judge(tiny + 5e-17, tiny).status == "ok"
    assert judge(tiny + 2e-16, tiny).status == "mismatch"
    flat = np.array([[1.0], [1.0 + 1e-6]])  # spread 1e-6 under 100 x 1e-4 of 1.0
    assert judge(flat, flat).status == "ungated"
    assert judge(flat + 1.0, flat).status == "mismatch"
    assert judge(np.zeros((2, 1)), np.zeros((2, 1))).status == "ungated"
    assert judge(np.array([[np.nan], [1.0]]), reference).status == "mismatch"


def test_gate_batch_is_whole_batches_of_at_least_eight_images():
    assert gate_batch(32, 1).shape == (8, 32, 32, 3)
    assert gate_batch(32, 3).shape == (9, 32, 32, 3)
    assert gate_batch(32, 16).shape == (16, 32, 32, 3)


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
    assert '"weights": "none"' in record and '"weights_sha256": "' in record
    session = open_session(runtime, artifact, batch_size=3, threads=1)
    images = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    reference = with_logit(toy_model).predict_on_batch(images)
    outputs = session.run(images)
    assert np.ptp(reference["logit"]) > 1e-2
    assert judge(outputs["logit"], reference["logit"]).status == "ok"
    assert max_abs_diff(outputs["probability"], reference["probability"]) <= 1e-5
    assert session.threads == 1 and session.version and "1" in session.settings


def perturb_head_weight(toy_model, artifact, factor=1.01) -> None:
    """Scale the largest of the head's kernel weights by ``factor`` where the artifact's files
    store it (as float32 bytes: every converter here keeps the head's kernel as it is)."""
    kernel = toy_model.get_layer("defect").get_weights()[0].astype("<f4")
    needle = kernel.tobytes()
    i = int(np.argmax(np.abs(kernel)))
    changed = kernel.copy()
    changed.flat[i] *= factor
    hits = 0
    for path in artifact.files:
        data = path.read_bytes()
        hits += data.count(needle)
        path.write_bytes(data.replace(needle, changed.tobytes()))
    assert hits == 1, f"the head's kernel is stored {hits} times in {artifact.files}"


@pytest.mark.parametrize("runtime", ["onnxruntime", "litert", "openvino"])
def test_one_weight_off_by_one_percent_is_a_mismatch(toy_model, tmp_path, runtime):
    """An exported artifact whose one weight was changed by 1 % after export: reused from
    its folder (its record still matches), it fails the gate in each format."""
    if not installed(runtime):
        pytest.skip(f"{runtime}: {registry.EXTRA_HINT}")
    artifact = export_model(toy_model, registry.SERVING_RUNTIMES[runtime].format, tmp_path)
    run = config(runtime=runtime, batch_size=2, steps=1, warmup=1, threads=1)

    def gate() -> dict:
        serving = ServingBench(toy_model, folder=str(tmp_path), require=True)
        try:
            return serving.prepare(run).fields
        finally:
            serving.close()

    intact = gate()
    perturb_head_weight(toy_model, artifact)
    perturbed = gate()
    assert intact["status"] == "ok" and intact["artifact_reused"] and intact["export_s"] == 0
    assert intact["gate_output_range"] >= JUDGEABLE * intact["gate_tolerance"]
    assert perturbed["status"] == "mismatch"
    assert perturbed["max_abs_diff"] > perturbed["gate_tolerance"] > 0


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
    # MobileNetV2's random-weight logits are ~1e-11, yet judged: the tolerance is relative
    assert served["gate_output_range"] < 1e-9
    assert served["status"] == "ok" and served["batch_size"] == 1 and served["threads"] == 1
    assert served["gate_output_range"] >= JUDGEABLE * served["gate_tolerance"]
    assert served["max_abs_diff"] <= served["gate_tolerance"] and served["load_1m_start"] >= 0
    assert served["export_s"] > 0 and served["artifact_mb"] > 1 and served["step_s_median"] > 0
    assert served["runtime_settings"] == "intra_op=1 inter_op=1 spinning=1"
    assert served["runtime_version"].startswith("1.")
    assert (out / "plots" / "latency_by_runtime.png").stat().st_size > 10_000
    assert "| MobileNetV2 | 32 |" in (out / "plots" / "latency_by_runtime.md").read_text()
    labels = sorted(entry.label for entry in load(out))
    assert labels == ["MobileNetV2 32px bs 1 infer float32",
                      "MobileNetV2 32px bs 1 infer float32 onnxruntime 1 threads"]  # fmt: skip


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


@needs("onnxruntime")
def test_timing_reuses_what_castbench_export_wrote(tmp_path, monkeypatch):
    """``castbench export`` once, then ``castbench timing --artifacts``: nothing is exported
    again (the model of each run is built from the same seed) and export_s is 0."""
    folder = tmp_path / "artifacts"
    assert main(["export", "MobileNetV2", "--size", "32", "--format", "onnx",
                 "--out", str(folder)]) == 0  # fmt: skip

    def exported_again(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(bench_module, "export_model", exported_again)
    out = tmp_path / "run"
    code = main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--batch", "1",
                 "--runtime", "onnxruntime", "--threads", "1", "--steps", "2", "--warmup", "1",
                 "--isolate", "none", "--no-plots", "--artifacts", str(folder), "--reuse-only",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    (row,) = ResultsFolder(out).rows
    assert row["artifact_reused"] is True and row["export_s"] == 0
    assert row["session_s"] > 0 and row["artifact_mb"] > 1 and row["step_s_median"] > 0


def fake_record(folder, **changes) -> None:
    """An export record for MobileNetV2 at 32 px in ONNX, as castbench export writes it."""
    from castbench.serving.artifacts import export_versions

    folder.mkdir()
    (folder / "mobilenetv2_gap_32px.onnx").write_bytes(b"onnx")
    record = {"model": "mobilenetv2_gap", "input_size": 32, "format": "onnx", "weights": "none",
              "weights_sha256": "0" * 64, "outputs": ["probability", "logit"],
              "versions": export_versions("onnx"), "files": ["mobilenetv2_gap_32px.onnx"],
              **changes}  # fmt: skip
    (folder / "mobilenetv2_gap_32px.onnx.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"versions": {"keras": "3.0.0"}}, "does not match: versions"),
        ({"input_size": 64}, "does not match: input_size 64 (here 32)"),
        ({"weights": "imagenet"}, "weights 'imagenet' (here 'none')"),
        ({"files": ["gone.onnx"]}, "lists files that are not there (gone.onnx)"),
        (None, "no export record"),
    ],
)
def test_reuse_only_refuses_an_artifact_that_does_not_match(tmp_path, capsys, changes,
                                                           message):  # fmt: skip
    folder = tmp_path / "artifacts"
    if changes is None:
        folder.mkdir()
    else:
        fake_record(folder, **changes)
    code = main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--runtime",
                 "onnxruntime", "--artifacts", str(folder), "--reuse-only",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("castbench: error: cannot reuse the onnx artifact: ")
    assert message in err
    assert not (tmp_path / "run").exists()  # refused before anything started


@pytest.mark.parametrize(
    "options, message",
    [
        (["--reuse-only"], "--reuse-only needs --artifacts DIR, the folder to reuse from"),
        (["--artifacts", "FILE"], "--artifacts must be a folder: "),
    ],
)
def test_artifacts_options_that_cannot_work_are_one_line_exit_2(tmp_path, capsys, options,
                                                                message):  # fmt: skip
    (tmp_path / "FILE").write_text("not a folder")
    options = [str(tmp_path / o) if o == "FILE" else o for o in options]
    code = main(["timing", "--backbones", "mobilenetv2", "--runtime", "onnxruntime", *options,
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err


@needs("onnxruntime")
def test_normalization_constants_are_folded_into_the_onnx_graph(tmp_path):
    """EfficientNet's Normalization layer keeps its mean and variance as tensors made when it
    is built; the ONNX export must hold them as constants, not ask for them as inputs."""
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(np.random.default_rng(0).uniform(-0.5, 1.0, (16, 32, 32, 3)).astype("float32"))
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(norm(inputs))
    x = keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(x))
    outputs = keras.layers.Dense(1, activation="sigmoid", name="defect")(x)
    model = keras.Model(inputs, outputs, name="toy_norm")
    mean = norm.mean
    export_model(model, "onnx", tmp_path)  # refused if an input beside the image were left
    assert norm.mean is mean  # the layer's own tensors again
    serving = ServingBench(model, folder=str(tmp_path), require=True)
    try:
        fields = serving.prepare(config(runtime="onnxruntime", steps=1, warmup=1)).fields
    finally:
        serving.close()
    assert fields["status"] == "ok" and fields["artifact_reused"]


@pytest.fixture(scope="module")
def casting_set(tmp_path_factory):
    """A tiny synthetic casting set: 24 training and 4 test images."""
    from castbench.data.synth import generate

    return generate(tmp_path_factory.mktemp("casting"), n_train=24, n_test=4)


def test_calibration_images_come_from_the_training_split_only(casting_set, monkeypatch):
    from castbench.data import loader
    from castbench.serving.calibration import calibration_images

    decoded = []
    real = loader.decode_rgb
    monkeypatch.setattr(loader, "decode_rgb",
                        lambda path, size: decoded.append(path) or real(path, size))  # fmt: skip
    images = calibration_images(str(casting_set), "MobileNetV2", 32, count=1000)
    assert images.shape == (len(decoded), 32, 32, 3) and images.dtype == np.float32
    assert 0 < len(decoded) < 24  # the training split less its validation images
    assert all(Path(p).parts[-3] == "train" for p in decoded)
    assert -1.0 <= images.min() < images.max() <= 1.0  # MobileNetV2's preprocess_input


def litert_tensor_types(path: Path) -> set[str]:
    """The element types of a .tflite file's tensors, as the interpreter reports them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}


def quantized_in(artifact: Artifact) -> bool:
    if artifact.format == "litert":  # int8 weights and activations; float32 only at its edges
        return "int8" in litert_tensor_types(artifact.path)
    marker = {"onnx": b"QuantizeLinear", "openvino": b'type="FakeQuantize"'}[artifact.format]
    return marker in artifact.path.read_bytes()


@pytest.mark.parametrize("runtime", ["onnxruntime", "litert", "openvino"])
def test_int8_artifact_is_quantized_calibrated_and_gated(toy_model, casting_set, tmp_path,
                                                         runtime):  # fmt: skip
    if not installed(runtime, "int8"):
        pytest.skip(f"{runtime} int8: {registry.EXTRA_HINT}")
    run = config(runtime=runtime, precision="int8", batch_size=2, steps=2, warmup=1, threads=1,
                 calibration_data=str(casting_set), calibration_images=8)  # fmt: skip
    serving = ServingBench(toy_model, folder=str(tmp_path))
    try:
        row = serving.measure(run, gflops_per_image=None)
        artifact = serving.artifact(registry.SERVING_RUNTIMES[runtime].format, run)
    finally:
        serving.close()
    assert ".int8." in artifact.path.name and quantized_in(artifact)
    record = json.loads(record_path(artifact.path, artifact.format).read_text())
    assert record["precision"] == "int8" and "train split: 8 images" in record["calibration"]
    assert row["status"] == "ok" and row["step_s_median"] > 0 and row["export_s"] > 0
    # int8 is not float32: it moves logits, here by less than a constant output would
    assert row["gate_tolerance"] == pytest.approx(QUANTIZED_SPREAD * row["gate_output_range"])
    assert 0 < row["max_abs_diff"] <= row["gate_tolerance"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--runtime", "onnxruntime"], "int8 needs calibration images: --data PATH"),
        (["--runtime", "keras", "openvino", "--data", "DATA"],
         "int8 is a serving runtime's precision (onnxruntime, litert, openvino); Keras times "
         "float32"),
        (["--precision", "float16", "--runtime", "onnxruntime"],
         "the onnxruntime runtime runs float32, int8, not float16: its CPU execution provider"),
        (["--precision", "bfloat16", "--runtime", "litert", "openvino"],
         "the litert runtime runs float32, float16, int8, not bfloat16"),
    ],
)  # fmt: skip
def test_a_precision_where_it_cannot_run_is_one_line_exit_2(casting_set, tmp_path, capsys,
                                                            options, message):  # fmt: skip
    options = [str(casting_set) if o == "DATA" else o for o in options]
    if "--precision" not in options:
        options = ["--precision", "int8", *options]
    code = main(["timing", "--backbones", "mobilenetv2", *options,
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def wide_model() -> keras.Model:
    """The toy network with two 32-filter convolutions: weights enough that their storage
    decides an artifact's size."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(x))
    outputs = keras.layers.Dense(1, activation="sigmoid", name="defect")(x)
    return keras.Model(inputs, outputs, name="toy_wide")


@pytest.mark.skipif(not installed("litert", "float16"), reason=registry.EXTRA_HINT)
def test_litert_float16_artifact_has_float16_weights_is_smaller_and_gated(wide_model,
                                                                          tmp_path):  # fmt: skip
    serving = ServingBench(wide_model, folder=str(tmp_path))
    run = config(runtime="litert", precision="float16", steps=2, warmup=1, threads=1)
    try:
        row = serving.measure(run, gflops_per_image=None)
        half = serving.artifact("litert", run)
        full = serving.artifact("litert")
    finally:
        serving.close()
    assert half.path.name == "toy_wide_32px.float16.tflite"
    assert "float16" in litert_tensor_types(half.path)
    assert "float16" not in litert_tensor_types(full.path)
    assert half.size_mb < 0.7 * full.size_mb
    record = json.loads(record_path(half.path, "litert").read_text())
    assert record["precision"] == "float16" and record["calibration"] is None
    assert row["status"] == "ok" and row["step_s_median"] > 0
    assert row["runtime_settings"] == "num_threads=1 weights=float16 compute=float32"
    assert row["max_abs_diff"] <= row["gate_tolerance"]


def openvino_capabilities() -> list[str]:
    import openvino as ov

    return ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@needs("openvino")
@pytest.mark.parametrize("precision, hint, capability", [("bfloat16", "bf16", "BF16"),
                                                        ("float16", "f16", "FP16")])  # fmt: skip
def test_openvino_runs_the_float32_ir_at_the_asked_precision_or_refuses(
    toy_model, tmp_path, precision, hint, capability
):
    """bfloat16 and float16 compile the float32 artifact (no file of their own) at that
    inference precision; a CPU that would run another (OpenVINO falls back by itself) is
    refused, naming what it would run, rather than timed under this precision's name."""
    run = config(runtime="openvino", precision=precision, steps=2, warmup=1, threads=1)
    serving = ServingBench(toy_model, folder=str(tmp_path))
    try:
        artifact = serving.artifact("openvino", run)
        assert artifact.path.name == "toy_gap_32px.xml"  # the float32 export
        if capability in openvino_capabilities():
            row = serving.measure(run, gflops_per_image=None)
            assert row["status"] == "ok" and row["step_s_median"] > 0
            assert f"INFERENCE_PRECISION_HINT={hint} " in row["runtime_settings"]
        else:
            with pytest.raises(PrecisionUnavailable) as refused:
                serving.measure(run, gflops_per_image=None)
            message = str(refused.value)
            assert message.count("\n") == 0
            expected = (f"openvino does not run {precision} on this CPU: compiled with "
                        f"INFERENCE_PRECISION_HINT={hint}, it runs ")  # fmt: skip
            assert message.startswith(expected)
    finally:
        serving.close()
    record = json.loads(record_path(artifact.path, "openvino").read_text())
    assert record["precision"] == "float32"


@needs("onnxruntime")
def test_onnxruntime_spinning_is_a_session_setting(toy_model, tmp_path):
    artifact = export_model(toy_model, "onnx", tmp_path)
    spinning = open_session("onnxruntime", artifact, batch_size=1, threads=1)
    idle = open_session("onnxruntime", artifact, batch_size=1, threads=1, spinning=False)
    assert spinning.settings == "intra_op=1 inter_op=1 spinning=1"
    assert idle.settings == "intra_op=1 inter_op=1 spinning=0"
    images = gate_batch(32, 1)[:1]
    assert np.array_equal(spinning.run(images)["logit"], idle.run(images)["logit"])


def test_precision_help_lists_each_runtimes_precisions(capsys):
    with pytest.raises(SystemExit):
        main(["timing", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{float32,mixed_float16,mixed_bfloat16,int8,float16,bfloat16}" in text
    assert ("float32, int8 (onnxruntime, litert, openvino), float16 (litert, openvino), "
            "bfloat16 (openvino)") in text  # fmt: skip


def test_latency_table_keeps_ungated_rows_and_names_them():
    rows = pd.DataFrame([
        {"backbone": "A", "input_size": 32, "batch_size": 1, "status": s, "runtime": r,
         "step_s_median": t}
        for r, s, t in [("keras", "ok", 0.010), ("litert", "ungated", 0.002),
                        ("openvino", "ungated", 0.003)]
    ])  # fmt: skip
    table = latency_table(rows, 1).iloc[0]
    assert table["best runtime"] == "litert" and table["litert"] == pytest.approx(2.0)
    assert table["ungated"] == "litert, openvino"


@needs("onnxruntime")
def test_runtime_row_scores_the_test_split_beside_keras(toy_model, casting_set, tmp_path):
    run = config(runtime="onnxruntime", batch_size=3, steps=1, warmup=1, threads=1,
                 test_data=str(casting_set))  # fmt: skip
    serving = ServingBench(toy_model, folder=str(tmp_path))
    try:
        row = serving.measure(run, gflops_per_image=None)
    finally:
        serving.close()
    assert row["status"] == "ok" and row["test_images"] == 4  # 4 test images, batches of 3
    # a float32 artifact of the same weights calls every image as Keras does
    assert row["test_recall_pct"] == row["keras_test_recall_pct"]
    assert row["delta_f1"] == 0 and row["mcnemar_p"] == 1.0
    assert row["mcnemar_keras_only"] == row["mcnemar_served_only"] == 0
