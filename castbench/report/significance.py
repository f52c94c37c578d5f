"""Which backbones differ beyond chance: McNemar's exact test on the shared test images, from
each run's ``predictions.csv`` (test image, label, defect score), at decision threshold 0.5.

Pairing: run r of backbone A is paired with run r of backbone B (same run index), image by
image; the discordant counts b and c are summed over the paired runs (pooled) and tested once.
Pooling treats every (image, run) as independent, which overstates the evidence when runs
repeat the same images, so each pair also carries the accuracy difference with a bootstrap
interval that resamples images with all their runs, and the number of paired runs whose own
McNemar test is significant. p-values are Holm-adjusted over all pairs of a table.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from castbench.errors import UsageError
from castbench.report.load import ExperimentTable
from castbench.report.load import finite_number as _num
from castbench.stats import discordant_counts, holm, mcnemar, paired_bootstrap_difference

DECISION = 0.5
ALPHA = 0.05


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    runs: int  # paired runs (run indices both backbones have)
    images: int  # test images every paired run scored
    b_count: int  # pooled: A right, B wrong
    c_count: int  # pooled: A wrong, B right
    p_value: float  # McNemar exact, pooled counts
    p_holm: float
    runs_significant: int  # paired runs whose own McNemar p < ALPHA (unadjusted)
    difference_pp: float  # accuracy A - B, percentage points
    low_pp: float
    high_pp: float

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA


@dataclass
class Significance:
    names: list[str]
    pairs: list[Pair]
    notes: list[str]

    def between(self, a: str, b: str) -> Pair | None:
        return next((p for p in self.pairs if {p.a, p.b} == {a, b}), None)


def image_key(path: str) -> str:
    """``split/class/file``: the part of an image path that names the image in the casting
    layout. Older runs wrote absolute paths, newer ones paths relative to the data root; every
    run of one table used the same data (its settings), so this tail identifies the image."""
    return "/".join(Path(path.replace("\\", "/")).parts[-3:])


def read_predictions(path: Path) -> dict[str, tuple[int, float]]:
    """image (:func:`image_key`) -> (label, score) from one run's ``predictions.csv``."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    out = {}
    for number, row in enumerate(rows, 2):
        label, score = _num(row.get("label")), _num(row.get("score"))
        if not row.get("path") or label not in (0, 1) or score is None:
            raise UsageError(f"{path} line {number}: expected path, label 0/1 and a score")
        key = image_key(row["path"])
        if key in out:
            raise UsageError(f"{path} line {number}: {key} scored twice")
        out[key] = (int(label), score)
    return out


def _runs(table: ExperimentTable, cell: dict[str, Any]) -> dict[int, dict[str, tuple]]:
    """run index -> predictions, for the cell's runs that kept a predictions.csv."""
    found = {}
    for member in cell["members"]:
        run_dir = member.get("run_dir")
        path = table.folder / str(run_dir) / "predictions.csv" if run_dir else None
        if path is not None and path.is_file():
            found[int(_num(member.get("run")) or 1)] = read_predictions(path)
    return found


def _correct(predictions: dict[str, tuple[int, float]], images: list[str]) -> np.ndarray:
    return np.array([(predictions[i][1] > DECISION) == bool(predictions[i][0]) for i in images])


def _compare(name_a: str, runs_a: dict, name_b: str, runs_b: dict) -> tuple[dict, str]:
    shared = sorted(set(runs_a) & set(runs_b))
    if not shared:
        return {}, f"{name_a} and {name_b} have no run index in common; not compared."
    sets = [set(runs[r]) for r in shared for runs in (runs_a, runs_b)]
    images = sorted(set.intersection(*sets))
    if not images:
        return {}, f"{name_a} and {name_b} scored no test image in common; not compared."
    for image in images:
        labels = {runs[r][image][0] for r in shared for runs in (runs_a, runs_b)}
        if len(labels) > 1:
            raise UsageError(f"predictions of {name_a} and {name_b} disagree on the label of "
                             f"{image}: not the same test set")  # fmt: skip
    correct_a = np.stack([_correct(runs_a[r], images) for r in shared])
    correct_b = np.stack([_correct(runs_b[r], images) for r in shared])
    per_run = [discordant_counts(x, y) for x, y in zip(correct_a, correct_b, strict=True)]
    b_count, c_count = (sum(bc[i] for bc in per_run) for i in (0, 1))
    difference, low, high = paired_bootstrap_difference(correct_a, correct_b)
    return {
        "a": name_a, "b": name_b, "runs": len(shared), "images": len(images),
        "b_count": b_count, "c_count": c_count, "p_value": mcnemar(b_count, c_count).p_value,
        "runs_significant": sum(mcnemar(*bc).p_value < ALPHA for bc in per_run),
        "difference_pp": 100 * difference, "low_pp": 100 * low, "high_pp": 100 * high,
    }, ""  # fmt: skip


def pairwise(table: ExperimentTable, cells: list[dict[str, Any]]) -> Significance:
    """McNemar among the table's backbones (its cells at 0.5, one per backbone)."""
    by_name: dict[str, dict] = {}
    notes = []
    for cell in cells:
        name = str(cell.get("backbone") or cell.get("variant"))
        runs = _runs(table, cell)
        if runs:
            by_name[name] = runs
        else:
            notes.append(f"{name}: no predictions.csv under its runs; left out.")
    names = list(by_name)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            result, note = _compare(a, by_name[a], b, by_name[b])
            if result:
                found.append(result)
            else:
                notes.append(note)
    adjusted = holm([r["p_value"] for r in found])
    pairs = [Pair(**r, p_holm=p) for r, p in zip(found, adjusted, strict=True)]
    return Significance(names, pairs, notes)
