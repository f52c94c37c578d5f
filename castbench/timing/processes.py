"""Repeats across processes: every configuration measured in N fresh processes, as pyperf
does, so that what one process happened to get (memory layout, thread placement, a neighbour's
load) shows up as between-process spread instead of passing for the configuration's speed.

Each repeat is a whole isolated sweep into ``OUT/processes/p<i>/`` (resumable on its own), the
repeats one after another so that drift spreads over all configurations alike. The folder's
row of a configuration is then its median process's row, with every process's median beside
it (``process_medians_s``) and their spread (``process_spread_pct``); ``compare`` tests
between processes where both sides have them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from castbench.results import ResultsFolder
from castbench.timing.config import TimingConfig

SUBFOLDER = "processes"

RunOnce = Callable[[list[TimingConfig], ResultsFolder], None]


def repeat_folder(out: Path, index: int) -> Path:
    return out / SUBFOLDER / f"p{index + 1}"


def run_repeated(
    configs: list[TimingConfig], folder: ResultsFolder, processes: int, run_once: RunOnce
) -> None:
    """Measure ``configs`` ``processes`` times through ``run_once`` (each time in fresh
    processes, each into its own subfolder, resuming it), then write the combined rows."""
    todo = [c for c in configs if c.key not in folder.finished_keys()]
    by_repeat = []
    for index in range(processes):
        repeat = ResultsFolder(repeat_folder(folder.path, index))
        run_once([c for c in todo if c.key not in repeat.finished_keys()], repeat)
        by_repeat.append({row["key"]: row for row in repeat.rows})
    for config in todo:
        rows = [rows[config.key] for rows in by_repeat if config.key in rows]
        if rows:
            folder.add(combine(rows))


def combine(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's rows from several processes as one: a failure if any failed (the
    first), else the row of the median process with every process's median beside it."""
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        return {**failed[0], "processes": len(rows)}
    medians = [float(r["step_s_median"]) for r in rows]
    ordered = sorted(range(len(rows)), key=lambda i: medians[i])
    middle = rows[ordered[(len(rows) - 1) // 2]]
    centre = statistics.median(medians)
    spread = statistics.stdev(medians) / centre * 100 if len(medians) > 1 and centre else 0.0
    return {
        **middle,
        "processes": len(rows),
        "process_medians_s": medians,
        "process_spread_pct": round(spread, 2),
    }
