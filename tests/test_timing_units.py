"""Pure parts of the timing engine: configurations, statistics, the results schema."""

import json
import math

import numpy as np
import pytest

from castbench.errors import UsageError, classify_failure
from castbench.results import ResultsFolder, complete_row, read_rows, row_header
from castbench.timing.config import SEED_TRAIN_IMAGES, TimingConfig, build_matrix
from castbench.timing.stats import percentile, summarize


def test_steps_per_epoch_is_ceil_of_images_over_batch_not_over_batch_squared():
    for batch in (2, 4, 8):
        config = TimingConfig("resnet50", 224, batch)
        assert config.steps_per_epoch == math.ceil(SEED_TRAIN_IMAGES / batch)
    assert [TimingConfig("resnet50", 224, b).steps_per_epoch for b in (2, 4, 8)] == [
        2654, 1327, 664,
    ]  # fmt: skip


def test_seed_training_images_follow_image_data_generator_split():
    # ImageDataGenerator keeps int(n * 0.2) of each class for validation
    assert SEED_TRAIN_IMAGES == (3758 - int(3758 * 0.2)) + (2875 - int(2875 * 0.2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch size must be a positive"),
        ({"batch_size": -2}, "batch size must be a positive"),
        ({"mode": "serve"}, "unknown mode"),
        ({"precision": "int4"}, "unknown precision"),
        ({"input_size": 40}, "at least 71x71"),
        ({"warmup": 0}, "warmup must be at least 1"),
        ({"trainable": "backbone"}, "unknown --trainable"),
    ],
)
def test_bad_configurations_are_usage_errors(kwargs, message):
    base = {"backbone": "xception", "input_size": 96, "batch_size": 2}
    with pytest.raises(UsageError, match=message):
        TimingConfig(**{**base, **kwargs})


def test_a_frozen_backbone_is_another_model_and_another_row():
    full = TimingConfig("MobileNetV2", 64, 2)
    frozen = TimingConfig("MobileNetV2", 64, 2, trainable="head")
    assert frozen.model_key != full.model_key and frozen.key != full.key
    assert full.key == "MobileNetV2|64|2|train|float32|auto|gap"  # full training keys unchanged
    assert row_header(frozen, "cpu", "tensorflow")["trainable"] == "head"


def test_matrix_order_lets_one_model_serve_a_backbone():
    configs = build_matrix(["vgg16", "mobilenetv2"], [8, 2, 4, 2], ["train", "infer"])
    assert len(configs) == 2 * 2 * 3
    assert [c.batch_size for c in configs[:3]] == [2, 4, 8]
    assert configs[0].input_size == 224 and configs[0].backbone == "VGG16"
    keys = [c.model_key for c in configs]
    assert len(set(keys)) == 2 and keys == sorted(keys, key=keys.index)
    assert len({c.key for c in configs}) == len(configs)


def test_summary_statistics_match_numpy():
    samples = [0.12, 0.10, 0.11, 0.30, 0.105, 0.115, 0.109]
    stats = summarize(samples)
    assert stats["step_s_median"] == pytest.approx(np.median(samples))
    assert stats["step_s_mean"] == pytest.approx(np.mean(samples))
    assert stats["step_s_std"] == pytest.approx(np.std(samples, ddof=1))
    assert stats["step_s_p90"] == pytest.approx(np.percentile(samples, 90))
    assert percentile(samples, 99) == pytest.approx(np.percentile(samples, 99))
    assert summarize([0.2])["step_s_std"] == 0.0


def test_failures_are_classified():
    assert classify_failure(MemoryError("no room"))[0] == "oom"
    resource = type("ResourceExhaustedError", (Exception,), {})("OOM when allocating tensor")
    assert classify_failure(resource) == (
        "oom", "ResourceExhaustedError: OOM when allocating tensor",
    )  # fmt: skip
    status, line = classify_failure(ValueError("bad shape\nsecond line"))
    assert status == "error" and line == "ValueError: bad shape"


def ok_row(key="A|1", **extra):
    return {"key": key, "backbone": "A", "status": "ok", "samples_s": [0.1, 0.2], **extra}


def test_results_folder_writes_rows_atomically_and_reloads(tmp_path):
    folder = ResultsFolder(tmp_path / "run")
    folder.add(ok_row("A|1"))
    folder.add(ok_row("A|2"))
    folder.add(ok_row("A|1", error=None, step_s_median=0.15))  # same configuration replaces
    rows = read_rows(tmp_path / "run")
    assert [r["key"] for r in rows] == ["A|1", "A|2"]
    assert rows[0]["step_s_median"] == 0.15 and rows[0]["samples_s"] == [0.1, 0.2]
    csv_lines = (tmp_path / "run" / "timing.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and "samples_s" not in csv_lines[0]
    assert not list((tmp_path / "run").glob(".*tmp"))
    assert ResultsFolder(tmp_path / "run").finished_keys() == {"A|1", "A|2"}


def test_rows_outside_the_schema_are_refused():
    with pytest.raises(ValueError, match="outside the results schema"):
        complete_row(ok_row(colour="blue"))
    with pytest.raises(ValueError, match="status"):
        complete_row({"key": "x", "status": "great"})


def test_foreign_or_unreadable_results_folders_are_clear_errors(tmp_path):
    with pytest.raises(UsageError, match="not a castbench timing results folder"):
        read_rows(tmp_path)
    (tmp_path / "timing.json").write_text("{half")
    with pytest.raises(UsageError, match="unreadable"):
        read_rows(tmp_path)
    (tmp_path / "timing.json").write_text(json.dumps({"schema": "castbench.timing", "version": 99}))
    with pytest.raises(UsageError, match="schema version 99"):
        read_rows(tmp_path)


def test_a_folder_this_castbench_writes_reads_back_at_the_current_schema(tmp_path):
    from castbench.results import SCHEMA_VERSION, read_run_metadata

    folder = ResultsFolder(tmp_path)
    folder.add(ok_row())
    folder.write_run_metadata({"command": "castbench timing", "schema_version": 0})
    for name in ("timing.json", "run.json"):
        payload = json.loads((tmp_path / name).read_text())
        assert payload["schema_version"] == SCHEMA_VERSION and "version" not in payload
    assert [row["key"] for row in read_rows(tmp_path)] == ["A|1"]
    assert read_run_metadata(tmp_path) == {"command": "castbench timing"}


def test_a_committed_version_1_folder_reads_through_the_upgrade():
    from pathlib import Path

    from castbench.results import read_run_metadata

    committed = Path(__file__).resolve().parents[1] / "results" / "cpu-reference"
    assert json.loads((committed / "timing.json").read_text())["version"] == 1
    rows = read_rows(committed)
    assert len(rows) == 60 and all(row["status"] == "ok" for row in rows)
    for row in rows:  # version 1 timed train_on_batch / predict_on_batch: the API step
        assert row["step"] == "api" and row["key"].endswith("|step-api")
        assert row["api_step_s_median"] == row["step_s_median"]
        assert row["jit_compile"] is None and row["jit_resolved"] is False  # asked auto
        assert "peak_gpu_mem_mb" not in row and row["nvml_gpu_mem_used_mb"] is None
    metadata = read_run_metadata(committed)
    assert metadata["command"].startswith("castbench timing") and "version" not in metadata


def test_upgrades_run_in_order_and_a_newer_schema_is_refused(tmp_path, monkeypatch):
    from castbench import results

    payload = {"schema": "castbench.timing", "version": 1, "rows": [ok_row(step_s_median=0.1)]}
    (tmp_path / "timing.json").write_text(json.dumps(payload))

    def upgrade_v2(old):  # a later schema that renames a column
        rows = [{**row, "step_s_p50": row.pop("step_s_median")} for row in old["rows"]]
        return {**old, "rows": rows, "schema_version": 3}

    monkeypatch.setattr(results, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(results.UPGRADES, 2, upgrade_v2)
    assert read_rows(tmp_path)[0]["step_s_p50"] == 0.1
    monkeypatch.undo()
    payload["version"] = results.SCHEMA_VERSION + 1
    (tmp_path / "timing.json").write_text(json.dumps(payload))
    with pytest.raises(UsageError, match="newer than this castbench reads") as raised:
        read_rows(tmp_path)
    assert "\n" not in str(raised.value)


def test_a_resumed_version_1_run_keeps_its_first_invocation(tmp_path):
    from castbench.results import read_run_metadata

    first = {"command": "castbench timing --batch 2", "started_at": "2026-01-01T00:00:00+00:00"}
    legacy = {"schema": "castbench.timing", "version": 1, "matrix": ["k2"], **first}
    (tmp_path / "run.json").write_text(json.dumps(legacy))
    again = {"command": "castbench timing --batch 2 4 --resume", "started_at": "later"}
    ResultsFolder(tmp_path).start_invocation({**again, "environment": {}},
                                             {**again, "matrix": ["k2", "k4"]})  # fmt: skip
    metadata = read_run_metadata(tmp_path)
    assert [entry["command"] for entry in metadata["invocations"]] == [
        first["command"], again["command"]
    ]  # fmt: skip
    assert {k: metadata[k] for k in first} == first and metadata["matrix"] == ["k2", "k4"]
