"""Compare two timing runs configuration by configuration: the ratio of median step times
(NEW / BASE) and a significance test (between processes where both runs repeated each
configuration in several, else on the step samples), Holm-corrected across configurations, so
that noise is not reported as a change. Pure logic; ``castbench compare`` is the command around it.

A run is a ``castbench timing`` results folder (or its ``timing.json``) or a pytest-benchmark
JSON file (``pytest bench --benchmark-json``; raw samples need ``--benchmark-save-data`` or
castbench's plugin). Configurations match by their whole identity
(:class:`castbench.identity.ConfigIdentity`): two rows that differ in any field that changes
what is measured -- step kind, trainable layers, head, strategy and the rest -- are never
paired; each is listed as found on one side only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.identity import ConfigIdentity
from castbench.results import TIMED_STATUSES
from castbench.stats import holm, mann_whitney_u, welch_t
from castbench.timing.sources import load_rows


@dataclass(frozen=True)
class Entry:
    """One configuration's step times in one run."""

    ident: ConfigIdentity
    label: str
    median_s: float
    samples_s: tuple[float, ...]
    process_medians_s: tuple[float, ...] = ()  # one per process, with --processes N


@dataclass(frozen=True)
class Comparison:
    label: str
    base_median_s: float
    new_median_s: float
    ratio: float  # new / base median step time: above 1 is slower
    change_pct: float
    p_value: float | None  # None: a side has no samples, the verdict rests on the ratio alone
    test: str | None  # what gave p_value (TESTS)
    p_holm: float | None  # p_value adjusted (Holm) over every configuration compared
    verdict: str  # faster | slower | no change
    failed: bool  # slower beyond --fail-above


def _entries_from_rows(
    rows: list[dict[str, Any]], source: Path, across: tuple[str, ...] = ()
) -> list[Entry]:
    entries = []
    seen: set[ConfigIdentity] = set()
    for row in rows:
        if row.get("status") not in TIMED_STATUSES or row.get("step_s_median") is None:
            continue
        ident = ConfigIdentity.from_row(row).without(across)
        if ident in seen:
            raise UsageError(f"{source} holds the configuration {ident.label} twice")
        seen.add(ident)
        samples = tuple(float(s) for s in row.get("samples_s") or ())
        processes = tuple(float(s) for s in row.get("process_medians_s") or ())
        entries.append(Entry(ident, ident.label, float(row["step_s_median"]), samples, processes))
    return entries


def load(source: str | Path, across: tuple[str, ...] = ()) -> list[Entry]:
    """The configurations of one run: a results folder, its timing.json, or a
    pytest-benchmark JSON file. Fields named in ``across`` are left out of the identity, so
    that rows differing only in them pair (a Keras run against a peer run: runtime, step)."""
    return _entries_from_rows(load_rows(source), Path(source), across)


# Between processes where both sides ran several (their medians are independent draws); else
# between the step samples of one process each (correlated: the p-value is optimistic).
TESTS = {
    "processes": "Welch's t on per-process medians",
    "samples": "Mann-Whitney U on step samples (one process per side)",
}


def _test(old: Entry, new: Entry) -> tuple[float | None, str | None]:
    if len(old.process_medians_s) >= 2 and len(new.process_medians_s) >= 2:
        return welch_t(new.process_medians_s, old.process_medians_s), "processes"
    if old.samples_s and new.samples_s:
        return mann_whitney_u(new.samples_s, old.samples_s)[1], "samples"
    return None, None


def compare(
    base: list[Entry], new: list[Entry], alpha: float = 0.05, fail_above: float | None = None
) -> dict[str, Any]:
    """Per-configuration comparisons, and what only one side has.

    Each pair is tested (between processes where both sides have them, else between step
    samples), and the p-values are adjusted with Holm's method over all the configurations
    compared, so that among many unchanged configurations none is called changed by chance
    more often than ``alpha``. A change is faster or slower only when its adjusted p-value is
    below ``alpha``; where a side has no samples, the ratio alone decides. ``failed`` marks a
    significant slow-down of more than ``fail_above`` percent.
    """
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    new_by_ident = {e.ident: e for e in new}
    base_idents = {e.ident for e in base}
    pairs = [(old, new_by_ident[old.ident]) for old in base if old.ident in new_by_ident]
    tested = [_test(old, current) for old, current in pairs]
    tested_p = [p for p, _ in tested if p is not None]
    adjusted = iter(holm(tested_p))
    comparisons = []
    for (old, current), (p_value, test) in zip(pairs, tested, strict=True):
        ratio = current.median_s / old.median_s if old.median_s > 0 else math.inf
        p_holm = None if p_value is None else next(adjusted)
        significant = p_holm is None or p_holm < alpha
        verdict = "no change"
        if significant and ratio != 1:
            verdict = "slower" if ratio > 1 else "faster"
        change_pct = (ratio - 1) * 100
        failed = fail_above is not None and verdict == "slower" and change_pct > fail_above
        comparisons.append(Comparison(old.label, old.median_s, current.median_s, ratio,
                                      change_pct, p_value, test, p_holm, verdict,
                                      failed))  # fmt: skip
    return {
        "alpha": alpha,
        "fail_above_pct": fail_above,
        "correction": "holm",
        "tests": {name: TESTS[name] for name in dict.fromkeys(t for _, t in tested if t)},
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
                 f"{'p (Holm)':>8}  verdict")  # fmt: skip
    for r in rows:
        p = "n/a" if r["p_holm"] is None else f"{r['p_holm']:.3g}"
        verdict = r["verdict"] + ("  FAIL" if r["failed"] else "")
        if r["p_value"] is None and r["verdict"] != "no change":
            verdict += " (no samples: ratio only)"
        times = f"{r['base_median_s'] * 1e3:9.2f}  {r['new_median_s'] * 1e3:9.2f}"
        lines.append(f"{r['label']:<{width}}  {times}  {r['ratio']:8.3f}  {p:>8}  {verdict}")
    for side, key in (("BASE", "only_in_base"), ("NEW", "only_in_new")):
        for label in report[key]:
            lines.append(f"only in {side}: {label}")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("slower", "faster", "no change")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    lines.append(f"{len(rows)} compared (alpha {report['alpha']}): {summary}")
    for name, test in report["tests"].items():
        used = sum(r["test"] == name for r in rows)
        lines.append(f"test: {test}, {used} configuration(s); p-values adjusted by Holm's "
                     f"method over all {len(rows)}")  # fmt: skip
    if report["fail_above_pct"] is not None:
        failed = sum(r["failed"] for r in rows)
        lines.append(f"{failed} significantly slower by more than {report['fail_above_pct']:g}%")
    return "\n".join(lines)
