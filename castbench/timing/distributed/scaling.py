"""Scaling efficiency: a distributed row's throughput against its one-replica baseline's."""

from __future__ import annotations

from castbench.results import ResultsFolder
from castbench.timing.config import STRATEGIES


def baseline_key(key: str) -> str | None:
    """The key of the one-replica (default strategy) twin of a distributed configuration."""
    head, _, last = key.rpartition("|")
    return head if last.split(":")[0] in STRATEGIES[1:] else None


def fill_scaling_efficiency(folder: ResultsFolder) -> int:
    """Add ``scaling_efficiency`` to each distributed ok row whose one-replica baseline is in
    ``folder``: global images/s over (replicas x baseline images/s). Returns rows updated."""
    rows = {row["key"]: row for row in folder.rows}
    updated = 0
    for row in list(rows.values()):
        base = rows.get(baseline_key(row["key"]) or "")
        if row["status"] != "ok" or not base or base["status"] != "ok":
            continue
        if not row.get("replicas") or not base.get("images_per_s"):
            continue
        efficiency = row["images_per_s"] / (row["replicas"] * base["images_per_s"])
        if row.get("scaling_efficiency") != efficiency:
            folder.add({**row, "scaling_efficiency": round(efficiency, 4)})
            updated += 1
    return updated
