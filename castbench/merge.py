"""Join timing results folders (shards of one matrix, or runs resumed elsewhere) into one.

Refuses folders from different environments (schema version, Keras backend, device, castbench
version) unless told to allow it, refuses a configuration measured twice with different results
unless ``prefer="newest"``, and lists the configurations of the announced matrix (``matrix`` in
each shard's ``run.json``) that no folder measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.results import RUN_FILE, ResultsFolder, read_rows

ENVIRONMENT_FIELDS = ("backend", "device", "castbench")


@dataclass
class MergeReport:
    out: Path
    rows: int
    sources: list[str]
    gaps: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # duplicate keys settled by prefer=newest
    warnings: list[str] = field(default_factory=list)


def _run_metadata(folder: Path) -> dict[str, Any]:
    path = folder / RUN_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"unreadable run metadata {path}: {exc}") from None


def _environment(metadata: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Backend, device and castbench version: from run.json, else from the rows."""
    env = {name: metadata.get(name) for name in ENVIRONMENT_FIELDS}
    for name in ("backend", "device"):
        if env[name] is None:
            values = {row.get(name) for row in rows if row.get(name)}
            env[name] = values.pop() if len(values) == 1 else None
    return env


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ignore = {"measured_at"}
    return {k: v for k, v in a.items() if k not in ignore} == {
        k: v for k, v in b.items() if k not in ignore
    }


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
    loaded = []
    for folder in folders:
        rows = read_rows(folder)  # a clear error for missing, unreadable, foreign schema
        metadata = _run_metadata(folder)
        loaded.append((folder, rows, metadata, _environment(metadata, rows)))

    report = MergeReport(out=out, rows=0, sources=[str(f) for f in folders])
    first_folder, _, _, first_env = loaded[0]
    for folder, _, _, env in loaded[1:]:
        differ = [
            f"{name} {first_env[name]!r} in {first_folder} but {env[name]!r} in {folder}"
            for name in ENVIRONMENT_FIELDS
            if first_env[name] is not None and env[name] is not None
            and first_env[name] != env[name]
        ]  # fmt: skip
        if differ and not allow_mixed:
            raise UsageError(
                "results come from different environments: " + "; ".join(differ)
                + " (pass --allow-mixed to merge them anyway)"
            )  # fmt: skip
        report.warnings.extend(f"mixed environments: {line}" for line in differ)

    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    conflicts = []
    for folder, rows, _, _ in loaded:
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

    announced: list[str] = []
    for _, rows, metadata, _ in loaded:
        for key in [*(metadata.get("matrix") or []), *(row["key"] for row in rows)]:
            if key not in announced:
                announced.append(key)
    report.gaps = [key for key in announced if key not in merged]
    order = {key: i for i, key in enumerate(announced)}

    target = ResultsFolder(out)
    with target.locked():
        if target.rows:
            raise UsageError(f"{out} already holds results; merge into a new folder")
        for key in sorted(merged, key=lambda k: order.get(k, len(order))):
            target.add(merged[key])
        first_metadata = loaded[0][2]
        target.write_run_metadata({
            **{k: v for k, v in first_metadata.items() if k not in ("schema", "version")},
            "merged_from": report.sources,
            "shards": [m.get("shard") for _, _, m, _ in loaded],
            "matrix": announced,
            "gaps": report.gaps,
            "shard": None,
            "shard_keys": None,
        })  # fmt: skip
    report.rows = len(merged)
    return report
