"""Experiment cells: the runs of one configuration at one decision threshold, summarised as
mean, sample sd and 95 % t interval per metric (:func:`castbench.stats.cell_summary`).

A cell is keyed by the configuration columns, not by the row key, so the same grid run once or
R times (rows ``run01``…, or one row key per run) gives the same cells. Tables from different
sources (castbench, the seed) are joined by ``variant``, the seed's label for a configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from castbench.report.load import ExperimentTable
from castbench.report.load import finite_number as _num
from castbench.stats import cell_summary

# What makes two rows the same configuration (besides the threshold).
CONFIGURATION = ("variant", "backbone", "input_size", "head", "augment", "batch_size", "epochs")
SUMMARISED = ("accuracy_pct", "recall_pct", "f1", "precision_pct", "specificity_pct",
              "train_s", "s_per_epoch", "epoch_s_median_after_first")  # fmt: skip
COUNTS = ("tp", "fp", "tn", "fn")
# The t interval knows no bounds; a metric's cannot leave its range, so intervals are clipped.
RANGE = {"f1": (0.0, 1.0), "accuracy_pct": (0.0, 100.0), "recall_pct": (0.0, 100.0),
         "precision_pct": (0.0, 100.0), "specificity_pct": (0.0, 100.0)}  # fmt: skip
NO_RANGE = (0.0, float("inf"))  # times


def predicts_one_class(row: dict[str, Any]) -> bool:
    """True when the row's counts put every test image in one class (no predicted defect, or
    no predicted good part): its accuracy is then a class share, not a result."""
    counts = [_num(row.get(k)) for k in COUNTS]
    if any(v is None for v in counts):
        return False
    tp, fp, tn, fn = counts
    return tp + fp + tn + fn > 0 and (tp + fp == 0 or tn + fn == 0)


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One cell: the first row's configuration, ``runs``, ``one_class_runs``, and for each
    metric present ``<m>_mean``, ``<m>_sd``, ``<m>_ci95_low``, ``<m>_ci95_high`` (sd and
    interval None for one run)."""
    first = rows[0]
    cell: dict[str, Any] = {k: first.get(k) for k in (*CONFIGURATION, "threshold", "row")}
    cell["runs"] = len(rows)
    cell["one_class_runs"] = sum(predicts_one_class(r) for r in rows)
    cell["members"] = list(rows)
    for column in SUMMARISED:
        values = [v for r in rows if (v := _num(r.get(column))) is not None]
        if not values:
            continue
        summary = cell_summary(values)
        low, high = RANGE.get(column, NO_RANGE)
        if summary["sd"] is not None:
            summary["ci95_low"] = max(low, summary["ci95_low"])
            summary["ci95_high"] = min(high, summary["ci95_high"])
        for part in ("mean", "sd", "ci95_low", "ci95_high"):
            cell[f"{column}_{part}"] = summary[part]
    params = [r.get("params_total") for r in rows if r.get("params_total")]
    cell["params_total"] = params[0] if params else None
    return cell


def cells(
    rows: Iterable[dict[str, Any]], thresholds: Sequence[float] | None = (0.5,)
) -> list[dict[str, Any]]:
    """Cells of ``rows`` in first-seen order; ``thresholds`` None keeps every threshold (a row
    without one counts as 0.5, the seed's tables)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        threshold = _num(row.get("threshold"))
        threshold = 0.5 if threshold is None else threshold
        if thresholds is not None and threshold not in thresholds:
            continue
        key = (*(row.get(k) for k in CONFIGURATION), threshold)
        groups.setdefault(key, []).append(row)
    return [summarise(members) for members in groups.values()]


def table_cells(
    table: ExperimentTable, thresholds: Sequence[float] | None = (0.5,)
) -> list[dict[str, Any]]:
    return cells(table.ok_rows, thresholds)


def interval(cell: dict[str, Any], column: str) -> tuple[float, float] | None:
    """The cell's 95 % interval for ``column``, or None (one run, or not measured)."""
    low, high = cell.get(f"{column}_ci95_low"), cell.get(f"{column}_ci95_high")
    return None if low is None or high is None else (low, high)


def format_cell(cell: dict[str, Any] | None, column: str, digits: int = 2) -> str:
    """``97.18`` for one run; ``97.18 ± 1.20 [95.90, 98.46]`` (mean ± sd [95 % CI]) for more
    (the sd with one digit less, as the seed wrote it, except for F1)."""
    if cell is None or cell.get(f"{column}_mean") is None:
        return "–"
    mean = cell[f"{column}_mean"]
    if cell.get(f"{column}_sd") is None:
        return f"{mean:.{digits}f}"
    sd = cell[f"{column}_sd"]
    sd_digits = digits if column == "f1" else max(2, digits - 1)
    low, high = interval(cell, column) or (mean, mean)
    return f"{mean:.{digits}f} ± {sd:.{sd_digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def one_class_note(cell: dict[str, Any]) -> str:
    """``one class: 2/3 runs`` for a cell with runs that predict one class, else empty."""
    if not cell.get("one_class_runs"):
        return ""
    return f"one class: {cell['one_class_runs']}/{cell['runs']} runs"
