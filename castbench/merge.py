"""Join timing results folders (shards of one matrix, or runs resumed elsewhere) into one.

Refuses folders from different environments (Keras backend and version, device, castbench
version; the check a ``--resume`` run makes too) unless told to allow it, refuses a
configuration measured twice with different results unless ``prefer="newest"``, and lists the
configurations of the announced matrix (``matrix`` in each shard's ``run.json``) that no folder
measured. The merged ``run.json`` keeps every source's invocations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castbench import environment
from castbench.errors import UsageError
from castbench.results import ResultsFolder, invocations, read_rows, read_run_metadata


@dataclass
class MergeReport:
    out: Path
    rows: int
    sources: list[str]
    gaps: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # duplicate keys settled by prefer=newest
    warnings: list[str] = field(default_factory=list)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ignore = {"measured_at"}
    return {k: v for k, v in a.items() if k not in ignore} == {
        k: v for k, v in b.items() if k not in ignore
    }


Loaded = list[tuple[Path, list[dict[str, Any]], dict[str, Any]]]  # (folder, rows, run.json)


def merge(
    sources: list[str | Path],
    out: str | Path,
    prefer: str | None = None,
    allow_mixed: bool = False,
) -> MergeReport:
    """Write the rows of ``sources`` to the new folder ``out``; see the module notes."""
    if prefer not in (None, "newest"):
        raise UsageError(f"--prefer must be 'newest', got {prefer!r}")
    if not sources:
        raise UsageError("give at least one results folder to merge")
    folders = [Path(s) for s in sources]
    out = Path(out)
    if any(folder.resolve() == out.resolve() for folder in folders):
        raise UsageError(f"--out {out} is one of the folders being merged; choose a new folder")
    # read_rows: a clear error for a missing, unreadable or foreign folder
    loaded = [(folder, read_rows(folder), read_run_metadata(folder)) for folder in folders]
    report = MergeReport(out=out, rows=0, sources=[str(f) for f in folders])
    report.warnings = _environment_warnings(loaded, allow_mixed)
    merged = _join_rows(loaded, prefer, report)
    announced = list(dict.fromkeys(
        key for _, rows, metadata in loaded
        for key in [*(metadata.get("matrix") or []), *(row["key"] for row in rows)]
    ))  # fmt: skip
    report.gaps = [key for key in announced if key not in merged]
    order = {key: i for i, key in enumerate(announced)}

    target = ResultsFolder(out)
    with target.locked():
        if target.rows:
            raise UsageError(f"{out} already holds results; merge into a new folder")
        for key in sorted(merged, key=lambda k: order.get(k, len(order))):
            target.add(merged[key])
        target.flush()  # shards that were all empty still make a results folder
        target.write_run_metadata({
            **loaded[0][2],
            "invocations": [entry for _, _, m in loaded for entry in invocations(m)],
            "merged_from": report.sources,
            "shards": [m.get("shard") for _, _, m in loaded],
            "matrix": announced,
            "gaps": report.gaps,
            "shard": None,
            "shard_keys": None,
        })  # fmt: skip
    report.rows = len(merged)
    return report


def _environment_warnings(loaded: Loaded, allow_mixed: bool) -> list[str]:
    """Refuse folders from different environments, or (``allow_mixed``) warn about them."""
    first_folder, first_rows, first_metadata = loaded[0]
    first_env = environment.recorded(first_metadata, first_rows)
    warnings = []
    for folder, rows, metadata in loaded[1:]:
        env = environment.recorded(metadata, rows)
        differ = environment.mismatches(first_env, env, str(first_folder), str(folder))
        if differ and not allow_mixed:
            raise UsageError(
                "results come from different environments: " + "; ".join(differ)
                + " (pass --allow-mixed to merge them anyway)"
            )  # fmt: skip
        warnings.extend(f"mixed environments: {line}" for line in differ)
    return warnings


def _join_rows(loaded: Loaded, prefer: str | None, report: MergeReport) -> dict[str, dict]:
    """Every folder's rows by key; a key measured differently twice is a conflict."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    conflicts = []
    for folder, rows, _ in loaded:
        for row in rows:
            key = row["key"]
            if key not in merged or _same(merged[key], row):
                merged.setdefault(key, row)
                origin.setdefault(key, folder)
                continue
            if prefer == "newest":
                if (row.get("measured_at") or "") > (merged[key].get("measured_at") or ""):
                    merged[key], origin[key] = row, folder
                report.replaced.append(key)
            else:
                conflicts.append(f"{key} ({origin[key]} and {folder})")
    if conflicts:
        shown = "; ".join(conflicts[:5]) + (
            f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        )
        raise UsageError(
            f"{len(conflicts)} configuration(s) measured differently in more than one folder: "
            f"{shown}. Pass --prefer newest to keep the most recent measurement"
        )
    return merged
