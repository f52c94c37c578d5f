"""The quality columns of a serving row: the artifact's test-split scores beside Keras's."""

import numpy as np
import pandas as pd
import pytest

from castbench.serving.plots import plot_latency_vs_recall
from castbench.serving.quality import quality_fields
from castbench.serving.report import latency_table
from castbench.serving.sessions import run_in_batches
from castbench.spec import weights_choice


def test_runs_in_batches_feed_whole_batches_and_drop_the_padding():
    images = np.arange(7, dtype="float32").reshape(7, 1, 1, 1)
    seen = []

    def run(batch):
        seen.append(len(batch))
        return {"probability": batch.reshape(-1, 1) / 10}

    scores = run_in_batches(run, images, batch_size=3)["probability"].reshape(-1)
    assert seen == [3, 3, 3]  # the last batch of one image padded to three
    assert scores == pytest.approx(np.arange(7) / 10)


def test_quality_fields_score_both_and_test_only_the_discordant_images():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    keras = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.6, 0.3])  # 6 right: misses #3, calls #6
    served = np.array([0.9, 0.8, 0.4, 0.2, 0.1, 0.1, 0.4, 0.3])  # misses #2 too, mends #6
    fields = quality_fields(labels, served, keras)
    assert fields["test_images"] == 8
    assert fields["keras_test_recall_pct"] == pytest.approx(75.0)
    assert fields["test_recall_pct"] == pytest.approx(50.0)
    assert fields["delta_recall_pct"] == pytest.approx(-25.0)
    assert fields["keras_test_accuracy_pct"] == fields["test_accuracy_pct"] == pytest.approx(75.0)
    assert fields["delta_accuracy_pct"] == 0
    assert fields["test_precision_pct"] == pytest.approx(100.0)
    assert fields["keras_test_f1"] == pytest.approx(2 * 0.75 * 0.75 / 1.5)
    # image 2: Keras right, served wrong; image 6: Keras wrong, served right -> p = 1
    assert (fields["mcnemar_keras_only"], fields["mcnemar_served_only"]) == (1, 1)
    assert fields["mcnemar_p"] == pytest.approx(1.0)


def test_quality_of_identical_scores_changes_nothing():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.7, 0.2, 0.4, 0.9])
    fields = quality_fields(labels, scores, scores.copy())
    assert all(fields[f"delta_{n}"] == 0 for n in ("accuracy_pct", "recall_pct", "f1"))
    assert fields["mcnemar_p"] == 1.0 and fields["mcnemar_keras_only"] == 0


@pytest.mark.parametrize("weights, expected", [("none", False), ("ImageNet", False),
                                               ("run/best.weights.h5", True)])  # fmt: skip
def test_only_a_weights_file_makes_rows_score_the_test_split(weights, expected):
    assert (weights_choice(weights) == "file") is expected


def serving_rows() -> pd.DataFrame:
    rows = [("keras", "float32", 30.0, None), ("openvino", "float32", 5.0, 90.0),
            ("openvino", "int8", 2.0, 88.0), ("onnxruntime", "int8", 3.0, 70.0)]  # fmt: skip
    return pd.DataFrame([
        {"backbone": "MobileNetV2", "input_size": 128, "batch_size": 1, "mode": "infer",
         "status": "ok", "runtime": runtime, "precision": precision, "device": "cpu",
         "step_s_median": ms / 1e3, "test_recall_pct": recall, "test_images": 715,
         "keras_test_recall_pct": 90.0}
        for runtime, precision, ms, recall in rows
    ])  # fmt: skip


def test_latency_table_keeps_each_precision_of_a_runtime_apart():
    table = latency_table(serving_rows(), batch_size=1).iloc[0]
    assert table["openvino"] == pytest.approx(5.0) and table["openvino int8"] == 2.0
    assert table["best runtime"] == "openvino int8"
    assert table["best / keras"] == pytest.approx(2.0 / 30.0)


def test_latency_vs_recall_plot_is_drawn_only_from_scored_rows(tmp_path):
    (path,) = plot_latency_vs_recall(serving_rows(), tmp_path)
    assert path.name == "latency_vs_recall.png" and path.stat().st_size > 10_000
    unscored = serving_rows().assign(test_recall_pct=None)
    assert plot_latency_vs_recall(unscored, tmp_path / "none") == []
