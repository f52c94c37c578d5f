"""Find and read what a report is made of: experiment tables (castbench's own runs or the seed's
reference numbers), timing results folders and single training runs.

A folder is recognised by what it holds:

- ``<experiment>.json`` with schema ``castbench.experiment``: an experiment table (``castbench
  experiment`` output, or ``results/seed``);
- ``timing.csv``: a ``castbench timing`` results folder;
- ``part4_timing.csv``: the seed's own time-per-batch table (``results/seed``);
- ``run.json`` with schema ``castbench.train``: one ``castbench train`` run.

A folder that holds none of these is searched one level down (``results/experiments`` with one
sub-folder per experiment).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.identity import ConfigIdentity

EXPERIMENT_SCHEMA = "castbench.experiment"
TRAIN_SCHEMA = "castbench.train"
NUMERIC = {
    "input_size", "batch_size", "epochs", "seed", "run", "threshold", "accuracy_pct",
    "recall_pct", "f1", "precision_pct", "specificity_pct", "tp", "fp", "tn", "fn", "n_test",
    "train_s", "s_per_epoch", "epoch_s_first", "epoch_s_median_after_first", "best_epoch",
    "params_total", "step_s_median", "step_s_mean", "step_s_std", "images_per_s",
    "steps_per_epoch", "epoch_s", "batch_s_reported", "steps_per_epoch_reported",
}  # fmt: skip


@dataclass
class ExperimentTable:
    name: str
    source: str  # "castbench" or "seed"
    folder: Path
    rows: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def ok_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if (r.get("status") or "ok") == "ok"]


@dataclass
class TimingTable:
    source: str  # "castbench" or "seed"
    folder: Path
    rows: list[dict[str, Any]]  # normalised: backbone, input_size, batch_size, mode, step_s, ...
    run: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass
class TrainRun:
    folder: Path
    run: dict[str, Any]
    sweep: list[dict[str, Any]]
    confusion: dict[str, Any]
    label: str = ""


@dataclass
class Inputs:
    experiments: list[ExperimentTable] = field(default_factory=list)
    timings: list[TimingTable] = field(default_factory=list)
    runs: list[TrainRun] = field(default_factory=list)
    folders: list[tuple[Path, str]] = field(default_factory=list)  # (folder, what it held)

    def tables(self, name: str) -> list[ExperimentTable]:
        return [t for t in self.experiments if t.name == name]

    @property
    def empty(self) -> bool:
        return not (self.experiments or self.timings or self.runs)


def _number(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in str(value) else number


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (empty cells, text, NaN, infinities)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {k: (_number(v) if k in NUMERIC else (v if v != "" else None)) for k, v in r.items()}
            for r in csv.DictReader(handle)
        ]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _series_name(row: dict[str, Any]) -> str:
    """The backbone, and what else sets this row apart from the default configuration (step
    kind, precision, strategy, ...): rows of one series make one curve or table line."""
    variant = ConfigIdentity.from_row(row).variant() if row.get("batch_size") else ""
    return f"{row['backbone']} {variant}" if variant else str(row["backbone"])


def _scan(folder: Path, inputs: Inputs) -> bool:
    found = []
    for path in sorted(folder.glob("*.json")):
        payload = _read_json(path)
        if payload and payload.get("schema") == EXPERIMENT_SCHEMA and "rows" in payload:
            source = payload.get("source") or (
                "seed" if all(r.get("source") == "seed" for r in payload["rows"]) else "castbench"
            )
            rows = [{k: _number(v) if k in NUMERIC else v for k, v in r.items()}
                    for r in payload["rows"]]  # fmt: skip
            inputs.experiments.append(
                ExperimentTable(
                    name=payload.get("experiment") or path.stem,
                    source=source,
                    folder=folder,
                    rows=rows,
                    settings=payload.get("settings") or {},
                )
            )
            found.append(f"{payload.get('experiment')} table ({source})")
    if (folder / "timing.csv").is_file():
        raw = read_csv(folder / "timing.csv")
        rows = []
        for r in raw:
            rows.append({**r, "step_s": r.get("step_s_median"), "status": r.get("status") or "ok",
                         "series": _series_name(r)})  # fmt: skip
        run = _read_json(folder / "run.json") or {}
        inputs.timings.append(TimingTable("castbench", folder, rows, run=run))
        found.append("timing results")
    if (folder / "part4_timing.csv").is_file():
        raw = read_csv(folder / "part4_timing.csv")
        rows = [
            {
                "backbone": r["backbone"],
                "batch_size": r["batch_size"],
                "mode": "train",
                "status": "ok",
                "input_size": 224 if r["backbone"] == "NASNetMobile" else 512,
                "step_s": r.get("batch_s_reported"),
                "epoch_s": r.get("epoch_s"),
            }
            for r in raw
        ]
        inputs.timings.append(TimingTable("seed", folder, rows))
        found.append("seed timing (Part 4)")
    run_file = folder / "run.json"
    payload = _read_json(run_file) if run_file.is_file() else None
    if payload and payload.get("schema") == TRAIN_SCHEMA:
        sweep_payload = _read_json(folder / "metrics.json") or {}
        inputs.runs.append(
            TrainRun(
                folder=folder,
                run=payload,
                sweep=list(sweep_payload.get("thresholds", [])),
                confusion=_read_json(folder / "confusion.json") or {},
            )
        )
        found.append("training run")
    if found:
        inputs.folders.append((folder, ", ".join(found)))
    return bool(found)


def discover(paths: list[str | Path]) -> Inputs:
    """Read every recognised folder among ``paths`` (and, for a folder holding none, its
    immediate sub-folders)."""
    inputs = Inputs()
    for given in paths:
        folder = Path(given)
        if not folder.is_dir():
            raise UsageError(f"not a folder: {folder}")
        if _scan(folder, inputs):
            continue
        hits = [_scan(child, inputs) for child in sorted(folder.iterdir()) if child.is_dir()]
        if not any(hits):
            raise UsageError(
                f"{folder} holds no castbench results (experiment tables, timing.csv, or a "
                "training run's run.json)"
            )
    if inputs.empty:
        raise UsageError("nothing to report")
    _label(inputs)
    return inputs


def _label(inputs: Inputs) -> None:
    """Short legend names: ``seed``, or castbench with its size and epochs; folder names where
    two would read alike."""
    for table in inputs.experiments:
        if table.source == "seed":
            table.label = "seed (slides)"
            continue
        size = table.settings.get("size")
        epochs = table.settings.get("epochs")
        size_text = f"{size} px" if size else "native size"
        table.label = f"castbench, {size_text}, {epochs} ep" if epochs else "castbench"
    seen: dict[tuple[str, str], int] = {}
    for table in inputs.experiments:
        seen[(table.name, table.label)] = seen.get((table.name, table.label), 0) + 1
    for table in inputs.experiments:
        if seen[(table.name, table.label)] > 1:
            table.label = f"{table.label} [{table.folder.name}]"
    for timing in inputs.timings:
        if timing.source == "seed":
            timing.label = "seed (slides, incl. input pipeline)"
        else:
            device = (timing.run.get("environment") or timing.run).get("device") or ""
            device = device.split(":", 1)[-1][:28] if device else timing.folder.name
            timing.label = f"castbench, {device}"
    labels = [t.label for t in inputs.timings]
    for timing in inputs.timings:
        if labels.count(timing.label) > 1:
            timing.label = f"{timing.label} [{timing.folder.name}]"
    for run in inputs.runs:
        run.label = run.run.get("label") or run.folder.name
