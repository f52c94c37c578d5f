import csv
import math
import warnings
from pathlib import Path

import pytest

from castbench import metrics
from castbench.metrics import Confusion, MetricWarning

SEED_PART5 = Path(__file__).resolve().parents[1] / "results" / "seed" / "threshold.csv"


def test_confusion_counts_by_hand():
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 1]
    scores = [0.9, 0.6, 0.4, 0.2, 0.1, 0.55, 0.3, 0.7, 0.05, 0.5]
    # at 0.5 (strictly greater): predicted defect = 0.9, 0.6, 0.55, 0.7
    c = metrics.confusion_counts(labels, scores, 0.5)
    assert c == Confusion(tp=2, fp=2, tn=3, fn=3)
    assert c.accuracy() == pytest.approx(5 / 10)
    assert c.recall() == pytest.approx(2 / 5)
    assert c.precision() == pytest.approx(2 / 4)
    assert c.specificity() == pytest.approx(3 / 5)
    p, r = 0.5, 0.4
    assert c.f1() == pytest.approx(2 * p * r / (p + r))
    assert c.as_matrix() == [[3, 2], [3, 2]]
    # at 0.1: everything above 0.1 is a defect
    assert metrics.confusion_counts(labels, scores, 0.1) == Confusion(tp=5, fp=3, tn=2, fn=0)


def test_metrics_row_and_sweep():
    labels = [1, 0, 1, 0]
    scores = [0.95, 0.15, 0.35, 0.65]
    row = metrics.metrics_at(labels, scores, 0.3)
    assert (row["tp"], row["fp"], row["tn"], row["fn"], row["n"]) == (2, 1, 1, 0, 4)
    assert row["accuracy_pct"] == pytest.approx(75.0)
    assert row["recall_pct"] == pytest.approx(100.0)
    assert row["precision_pct"] == pytest.approx(200 / 3)
    assert row["f1"] == pytest.approx(0.8)
    sweep = metrics.threshold_sweep(labels, scores)
    assert [r["threshold"] for r in sweep] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert [r["tp"] + r["fn"] for r in sweep] == [2] * 9
    assert sweep[-1]["tp"] == 1 and sweep[-1]["fp"] == 0


@pytest.mark.parametrize(
    ("counts", "name", "method"),
    [
        (Confusion(tp=0, fp=0, tn=5, fn=3), "precision", "precision"),
        (Confusion(tp=0, fp=2, tn=5, fn=0), "recall", "recall"),
        (Confusion(tp=0, fp=0, tn=5, fn=0), "F1", "f1"),
        (Confusion(tp=4, fp=0, tn=0, fn=1), "specificity", "specificity"),
    ],
)
def test_degenerate_cases_warn_and_give_zero(counts, name, method):
    with pytest.warns(MetricWarning, match=name):
        value = getattr(counts, method)()
    assert value == 0.0


def test_no_predicted_positive_row_has_no_nan():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = metrics.metrics_at([1, 0, 1], [0.1, 0.2, 0.3], 0.5)
    assert any(issubclass(w.category, MetricWarning) for w in caught)
    assert row["precision_pct"] == 0.0 and row["f1"] == 0.0 and row["recall_pct"] == 0.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.values())


def test_f1_defined_when_precision_is_undefined_but_recall_is_zero():
    # no predicted positive, some actual positives: precision 0/0 -> 0, recall 0, F1 = 0
    c = Confusion(tp=0, fp=0, tn=2, fn=2)
    with pytest.warns(MetricWarning):
        assert c.precision() == 0.0
    assert c.f1() == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels"):
        metrics.confusion_counts([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="scores"):
        metrics.confusion_counts([0, 1], [0.1])
    with pytest.raises(ValueError):
        metrics.mean_sd([])


def test_mean_sd_is_sample_sd():
    mean, sd = metrics.mean_sd([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert sd == pytest.approx(math.sqrt(5 / 3))  # ddof=1
    with pytest.warns(MetricWarning):
        assert metrics.mean_sd([7.0]) == (7.0, 0.0)


# The seed's Part 5 runs (accuracy %, threshold 0.1..0.5) as transcribed from its slides.
SEED_ACCURACY = {
    0.1: [99.44, 98.74, 99.3, 98.32, 99.44, 99.3, 99.3, 92.46, 99.3, 99.02],
    0.2: [99.44, 98.88, 99.3, 98.6, 99.44, 99.3, 99.3, 94.27, 99.3, 99.16],
    0.3: [99.44, 99.16, 99.3, 98.6, 99.44, 99.3, 99.3, 94.97, 99.3, 99.16],
    0.4: [99.44, 99.3, 99.3, 98.74, 99.44, 99.3, 99.3, 95.39, 99.3, 99.16],
    0.5: [99.58, 99.3, 99.3, 98.74, 99.3, 99.3, 99.3, 95.53, 99.3, 99.3],
}
SEED_MEANS = {0.1: 98.462, 0.2: 98.699, 0.3: 98.797, 0.4: 98.867, 0.5: 98.895}
# Sample sd of the listed runs; the seed's slide prints 2.24/1.65/1.43/1.30/1.25, which is larger.
SAMPLE_SD = {0.1: 2.14, 0.2: 1.58, 0.3: 1.37, 0.4: 1.24, 0.5: 1.20}


@pytest.mark.parametrize("threshold", sorted(SEED_ACCURACY))
def test_seed_part5_means(threshold):
    mean, sd = metrics.mean_sd(SEED_ACCURACY[threshold])
    assert round(mean, 3) == pytest.approx(SEED_MEANS[threshold], abs=1e-3)
    assert round(sd, 2) == pytest.approx(SAMPLE_SD[threshold], abs=1e-9)


def test_seed_part5_recall_at_05():
    recall = [100, 100, 100, 100, 99.62, 100, 100, 100, 100, 100]
    mean, sd = metrics.mean_sd(recall)
    assert round(mean, 3) == pytest.approx(99.962)
    assert round(sd, 2) == pytest.approx(0.12)  # the seed prints 0.13


def test_summarize_runs_on_the_seed_reference_table():
    with SEED_PART5.open() as handle:
        rows = [
            {
                k: (float(v) if k in ("threshold", "accuracy_pct", "recall_pct", "f1") else v)
                for k, v in r.items()
            }
            for r in csv.DictReader(handle)
        ]
    summary = metrics.summarize_runs(rows, by=("threshold",))
    assert [s["threshold"] for s in summary] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert all(s["runs"] == 10 for s in summary)
    for s in summary:
        assert round(s["accuracy_pct_mean"], 3) == pytest.approx(SEED_MEANS[s["threshold"]])
    assert "precision_pct_mean" not in summary[0]  # the seed did not report precision
    assert metrics.format_mean_sd(98.4620, 2.1384) == "98.462 ± 2.14"
    assert metrics.format_mean_sd(100.0, 0.0) == "100.000"


def test_scores_a_threshold_cannot_separate_are_flagged():
    assert metrics.scores_indistinct([0.5591, 0.5592, 0.5590])
    assert not metrics.scores_indistinct([0.2, 0.9, 0.5])
    assert not metrics.scores_indistinct([0.5591])  # one image says nothing about spread
