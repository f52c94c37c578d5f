"""Scaling efficiency: a distributed row's throughput against its one-replica baseline's."""

from __future__ import annotations

from dataclasses import replace

from castbench.identity import ConfigIdentity
from castbench.results import ResultsFolder


def baseline_identity(row: dict) -> ConfigIdentity | None:
    """The identity of the one-replica (default strategy) twin of a distributed row."""
    ident = ConfigIdentity.from_row(row)
    if ident.strategy == "default":
        return None
    return replace(ident, strategy="default", replicas=1)


def fill_scaling_efficiency(folder: ResultsFolder) -> int:
    """Add ``scaling_efficiency`` to each distributed ok row whose one-replica baseline is in
    ``folder``: global images/s over (replicas x baseline images/s). Returns rows updated."""
    by_identity = {ConfigIdentity.from_row(row): row for row in folder.rows}
    updated = 0
    for row in list(folder.rows):
        baseline = baseline_identity(row)
        base = by_identity.get(baseline) if baseline else None
        if row["status"] != "ok" or not base or base["status"] != "ok":
            continue
        if not row.get("replicas") or not base.get("images_per_s"):
            continue
        efficiency = row["images_per_s"] / (row["replicas"] * base["images_per_s"])
        if row.get("scaling_efficiency") != efficiency:
            folder.add({**row, "scaling_efficiency": round(efficiency, 4)})
            updated += 1
    return updated
