"""Compare two timing runs configuration by configuration: the ratio of median step times
(NEW / BASE) and a Mann-Whitney U test on the recorded step samples, so that noise is not
reported as a change. Pure logic; ``castbench compare`` is the command around it.

A run is a ``castbench timing`` results folder (or its ``timing.json``) or a pytest-benchmark
JSON file (``pytest bench --benchmark-json``; raw samples need ``--benchmark-save-data`` or
castbench's plugin). Configurations match by backbone, input size, batch size, mode,
precision and runtime (Keras, or a serving runtime).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.results import TIMED_STATUSES
from castbench.stats import mann_whitney_u
from castbench.timing.sources import load_rows

IDENTITY = ("backbone", "input_size", "batch_size", "mode", "precision", "runtime")


@dataclass(frozen=True)
class Entry:
    """One configuration's step times in one run."""

    ident: tuple
    label: str
    median_s: float
    samples_s: tuple[float, ...]


@dataclass(frozen=True)
class Comparison:
    label: str
    base_median_s: float
    new_median_s: float
    ratio: float  # new / base median step time: above 1 is slower
    change_pct: float
    p_value: float | None  # None: a side has no samples, the verdict rests on the ratio alone
    verdict: str  # faster | slower | no change
    failed: bool  # slower beyond --fail-above


def _jit_head(key: str) -> str | None:
    parts = str(key).split("|")
    return "|".join(parts[5:]) if len(parts) >= 7 else None


def _entries_from_rows(rows: list[dict[str, Any]], source: Path) -> list[Entry]:
    entries = []
    for row in rows:
        if row.get("status") not in TIMED_STATUSES or row.get("step_s_median") is None:
            continue
        runtime = row.get("runtime") or "keras"  # rows from before serving runtimes: Keras
        ident = tuple(str(row[f]).lower() if f == "backbone" else row.get(f)
                      for f in IDENTITY[:-1]) + (runtime,)  # fmt: skip
        label = (f"{row['backbone']} {row['input_size']}px bs {row['batch_size']} {row['mode']}"
                 f" {row['precision']}")  # fmt: skip
        label += f" {runtime}" if runtime != "keras" else ""
        samples = tuple(float(s) for s in row.get("samples_s") or ())
        variant = _jit_head(row["key"]) if row.get("key") else None
        entries.append(Entry((*ident, variant), label, float(row["step_s_median"]), samples))
    return _disambiguate(entries, source)


def _disambiguate(entries: list[Entry], source: Path) -> list[Entry]:
    """Identity is the six configuration fields; the jit/head variant (last element) is kept
    only where one run holds several variants of the same six."""
    counts: dict[tuple, int] = {}
    for entry in entries:
        counts[entry.ident[:-1]] = counts.get(entry.ident[:-1], 0) + 1
    out = []
    seen: set[tuple] = set()
    for entry in entries:
        base = entry.ident[:-1]
        if counts[base] > 1:
            ident = entry.ident
            label = f"{entry.label} {entry.ident[-1]}"
        else:
            ident, label = base, entry.label
        if ident in seen:
            raise UsageError(f"{source} holds the configuration {label} twice")
        seen.add(ident)
        out.append(Entry(ident, label, entry.median_s, entry.samples_s))
    return out


def load(source: str | Path) -> list[Entry]:
    """The configurations of one run: a results folder, its timing.json, or a
    pytest-benchmark JSON file."""
    return _entries_from_rows(load_rows(source), Path(source))


def compare(
    base: list[Entry], new: list[Entry], alpha: float = 0.05, fail_above: float | None = None
) -> dict[str, Any]:
    """Per-configuration comparisons, and what only one side has.

    A change is faster or slower only when the samples differ significantly (p < ``alpha``);
    where a side has no samples, the ratio alone decides. ``failed`` marks a significant
    slow-down of more than ``fail_above`` percent.
    """
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    new_by_ident = {e.ident: e for e in new}
    base_idents = {e.ident for e in base}
    comparisons = []
    for old in base:
        current = new_by_ident.get(old.ident)
        if current is None:
            continue
        ratio = current.median_s / old.median_s if old.median_s > 0 else math.inf
        p_value = None
        if len(old.samples_s) >= 1 and len(current.samples_s) >= 1:
            p_value = mann_whitney_u(current.samples_s, old.samples_s)[1]
        significant = p_value is None or p_value < alpha
        verdict = "no change"
        if significant and ratio != 1:
            verdict = "slower" if ratio > 1 else "faster"
        change_pct = (ratio - 1) * 100
        failed = fail_above is not None and verdict == "slower" and change_pct > fail_above
        comparisons.append(Comparison(old.label, old.median_s, current.median_s, ratio,
                                      change_pct, p_value, verdict, failed))  # fmt: skip
    return {
        "alpha": alpha,
        "fail_above_pct": fail_above,
        "comparisons": [asdict(c) for c in comparisons],
        "only_in_base": [e.label for e in base if e.ident not in new_by_ident],
        "only_in_new": [e.label for e in new if e.ident not in base_idents],
        "failed": any(c.failed for c in comparisons),
    }


def format_report(report: dict[str, Any]) -> str:
    """The comparison as a table, then what could not be compared."""
    lines = []
    rows = report["comparisons"]
    width = max([len(r["label"]) for r in rows] + [13])
    lines.append(f"{'configuration':<{width}}  {'base ms':>9}  {'new ms':>9}  {'new/base':>8}  "
                 f"{'p':>7}  verdict")  # fmt: skip
    for r in rows:
        p = "n/a" if r["p_value"] is None else f"{r['p_value']:.3g}"
        verdict = r["verdict"] + ("  FAIL" if r["failed"] else "")
        if r["p_value"] is None and r["verdict"] != "no change":
            verdict += " (no samples: ratio only)"
        times = f"{r['base_median_s'] * 1e3:9.2f}  {r['new_median_s'] * 1e3:9.2f}"
        lines.append(f"{r['label']:<{width}}  {times}  {r['ratio']:8.3f}  {p:>7}  {verdict}")
    for side, key in (("BASE", "only_in_base"), ("NEW", "only_in_new")):
        for label in report[key]:
            lines.append(f"only in {side}: {label}")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("slower", "faster", "no change")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    lines.append(f"{len(rows)} compared (alpha {report['alpha']}): {summary}")
    if report["fail_above_pct"] is not None:
        failed = sum(r["failed"] for r in rows)
        lines.append(f"{failed} significantly slower by more than {report['fail_above_pct']:g}%")
    return "\n".join(lines)
