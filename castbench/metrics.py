"""Classification metrics as pure functions; the positive class is **defect** (``def_front``).

Everything here works on plain Python/NumPy values (no TensorFlow), so tables and reports can be
recomputed from stored scores without a framework.

Decision rule: a score counts as a predicted defect when ``score > threshold`` (strictly greater,
as Keras' ``BinaryAccuracy`` decides).

Degenerate cases follow scikit-learn's ``zero_division=0``: precision with no predicted positive,
recall with no actual positive, and F1 when precision and recall are both zero are reported as
0.0, with a :class:`MetricWarning` instead of a NaN or a crash.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from castbench.stats import cell_summary

# The thresholds ``castbench train`` reports, and the ones the seed's Part 5 swept.
SWEEP_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SEED_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)

# Columns of one metrics row, in table order (the seed's three first, then the rest).
METRIC_COLUMNS: tuple[str, ...] = (
    "accuracy_pct",
    "recall_pct",
    "f1",
    "precision_pct",
    "specificity_pct",
)
COUNT_COLUMNS: tuple[str, ...] = ("tp", "fp", "tn", "fn")


class MetricWarning(UserWarning):
    """A metric was undefined (0/0) and has been reported as 0.0."""


def _ratio(numerator: float, denominator: float, what: str) -> float:
    if denominator == 0:
        warnings.warn(f"{what} is undefined (0/0); reported as 0.0", MetricWarning, stacklevel=3)
        return 0.0
    return numerator / denominator


@dataclass(frozen=True)
class Confusion:
    """Counts of a binary decision with defect as the positive class."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.tn + self.fp

    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.n, "accuracy (no samples)")

    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn, "recall (no actual defect)")

    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp, "precision (no predicted defect)")

    def specificity(self) -> float:
        return _ratio(self.tn, self.tn + self.fp, "specificity (no actual good part)")

    def f1(self) -> float:
        # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and stays defined when P or R is 0/0.
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, "F1 (no true positive)")

    def as_matrix(self) -> list[list[int]]:
        """Rows = actual (ok, defect), columns = predicted (ok, defect)."""
        return [[self.tn, self.fp], [self.fn, self.tp]]

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def predicted_defect(scores: Iterable[float] | np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Which scores call their image a defect at ``threshold`` (strictly above it)."""
    s = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores).reshape(-1)
    return s.astype(np.float64) > threshold


def confusion_counts(
    labels: Iterable[int] | np.ndarray,
    scores: Iterable[float] | np.ndarray,
    threshold: float = 0.5,
) -> Confusion:
    """Count TP/FP/TN/FN for defect scores in [0, 1] against 0/1 labels (1 = defect)."""
    y = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels).reshape(-1)
    s = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("labels must be 0 (ok) or 1 (defect)")
    truth = y.astype(bool)
    predicted = predicted_defect(s, threshold)
    return Confusion(
        tp=int(np.sum(truth & predicted)),
        fp=int(np.sum(~truth & predicted)),
        tn=int(np.sum(~truth & ~predicted)),
        fn=int(np.sum(truth & ~predicted)),
    )


def scores_from_confusion(confusion: Confusion) -> dict[str, float]:
    """The seed's metrics (accuracy and recall in %, F1 in 0–1) plus precision and specificity."""
    return {
        "accuracy_pct": 100.0 * confusion.accuracy(),
        "recall_pct": 100.0 * confusion.recall(),
        "f1": confusion.f1(),
        "precision_pct": 100.0 * confusion.precision(),
        "specificity_pct": 100.0 * confusion.specificity(),
    }


def metrics_at(labels, scores, threshold: float = 0.5) -> dict[str, Any]:
    """One table row: threshold, counts and metrics."""
    confusion = confusion_counts(labels, scores, threshold)
    return {
        "threshold": round(float(threshold), 6),
        **confusion.to_dict(),
        "n": confusion.n,
        **scores_from_confusion(confusion),
    }


# Scores closer together than this cannot be told apart by any threshold in the sweep.
INDISTINCT_SCORE_SPREAD = 1e-3


def scores_indistinct(scores: Sequence[float]) -> bool:
    """True when every score is (nearly) the same: the model gives every image one answer, so
    each threshold puts all of them in one class and the metrics only restate class shares."""
    values = np.asarray(scores, dtype=float).reshape(-1)
    return values.size > 1 and float(values.max() - values.min()) < INDISTINCT_SCORE_SPREAD


def threshold_sweep(
    labels, scores, thresholds: Sequence[float] = SWEEP_THRESHOLDS
) -> list[dict[str, Any]]:
    """:func:`metrics_at` for each threshold, in the order given."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores).reshape(-1)
    return [metrics_at(y, s, t) for t in thresholds]


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1), from :func:`castbench.stats.cell_summary`.

    One value has no sample spread: its sd is reported as 0.0 with a warning. No values at all
    is an error (there is nothing to summarise).
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("mean_sd needs at least one value")
    if any(math.isnan(v) for v in data):
        raise ValueError("mean_sd got a NaN")
    summary = cell_summary(data)
    if summary["sd"] is None:
        warnings.warn(
            "standard deviation of one run is undefined; reported as 0.0",
            MetricWarning,
            stacklevel=2,
        )
        return summary["mean"], 0.0
    return summary["mean"], summary["sd"]


def summarize_runs(
    rows: Iterable[Mapping[str, Any]],
    by: Sequence[str] = ("threshold",),
    columns: Sequence[str] = METRIC_COLUMNS,
) -> list[dict[str, Any]]:
    """Mean, sample sd and 95 % confidence interval of ``columns`` over repeated runs, grouped
    by the ``by`` keys.

    Returns one dict per group (in first-seen order) with ``runs``, ``<col>_mean``,
    ``<col>_sd``, ``<col>_ci95_low`` and ``<col>_ci95_high`` for each column present in the
    rows (one run: sd 0, no interval).
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        summary: dict[str, Any] = dict(zip(by, key, strict=True))
        summary["runs"] = len(members)
        for column in columns:
            values = [m[column] for m in members if _present(m.get(column))]
            if not values:
                continue
            mean_and_sd = mean_sd(values) if len(values) > 1 else (float(values[0]), 0.0)
            summary[f"{column}_mean"], summary[f"{column}_sd"] = mean_and_sd
            cell = cell_summary([float(v) for v in values])
            summary[f"{column}_ci95_low"] = cell["ci95_low"]
            summary[f"{column}_ci95_high"] = cell["ci95_high"]
        out.append(summary)
    return out


def _present(value: Any) -> bool:
    if value is None or value == "":
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def format_mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """``98.462 ± 2.14``; the ± part is left out when sd is 0 (as the seed writes ``100``)."""
    if sd == 0:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{max(2, digits - 1)}f}"
