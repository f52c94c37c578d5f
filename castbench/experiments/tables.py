"""An experiment's table: one row per finished configuration and reported threshold, written
atomically as ``<name>.csv`` + ``<name>.json`` (with the settings it was trained with, so a
resumed run can check them), and for repeated grids the mean ± sd per threshold."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from castbench import metrics
from castbench.errors import UsageError
from castbench.experiments.grids import Experiment, Row
from castbench.experiments.plan import Settings
from castbench.files import atomic_write_text, csv_text
from castbench.runtime import keras_backend_name
from castbench.training import TrainConfig, TrainResult, json_text

SCHEMA = "castbench.experiment"
SCHEMA_VERSION = 1

# One table layout for every experiment and for the seed's reference numbers (results/seed).
COLUMNS: tuple[str, ...] = (
    "experiment", "row", "variant", "group", "backbone", "input_size", "head", "augment",
    "batch_size", "epochs", "seed", "run", "recipe", "precise_bn", "backend", "threshold",
    "accuracy_pct", "recall_pct", "f1", "precision_pct", "specificity_pct",
    "tp", "fp", "tn", "fn", "n_test",
    "train_s", "s_per_epoch", "epoch_s_first", "epoch_s_median_after_first", "best_epoch",
    "params_total", "source", "status", "error", "run_dir",
)  # fmt: skip
# a cell: one configuration (the seed's label for it) at one threshold, over its runs
SUMMARY_BY = ("variant", "threshold")


def table_rows(
    experiment: Experiment, row: Row, config: TrainConfig, result: TrainResult, run_dir: str
) -> list[dict[str, Any]]:
    """The table rows (one per reported threshold) of one finished configuration."""
    out = []
    for threshold in experiment.thresholds:
        measured = result.at(threshold)
        out.append(
            {
                **_row_identity(experiment, row, config),
                "threshold": threshold,
                **{k: measured[k] for k in metrics.METRIC_COLUMNS},
                **{k: measured[k] for k in metrics.COUNT_COLUMNS},
                "n_test": measured["n"],
                "train_s": result.timing["train_s"],
                "s_per_epoch": result.timing["s_per_epoch"],
                "epoch_s_first": result.timing["epoch_s_first"],
                "epoch_s_median_after_first": result.timing["epoch_s_median_after_first"],
                "best_epoch": result.best_epoch,
                "params_total": result.params_total,
                "source": "castbench",
                "status": "ok",
                "error": None,
                "run_dir": run_dir,
            }
        )
    return out


def _row_identity(experiment: Experiment, row: Row, config: TrainConfig) -> dict[str, Any]:
    return {
        "experiment": experiment.name,
        "row": row.key,
        "variant": row.variant,
        "group": row.group,
        "backbone": config.spec.record.name,
        "input_size": config.spec.input_size,
        "head": config.spec.head_label,
        "augment": config.augment,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "seed": config.seed,
        "run": row.run,
        "precise_bn": config.precise_bn,
        "recipe": config.recipe,
        "backend": keras_backend_name(),  # the Keras backend the row trains under
    }


def error_row(experiment: Experiment, row: Row, config: TrainConfig, error: str) -> dict:
    return {
        **_row_identity(experiment, row, config),
        "source": "castbench",
        "status": "error",
        "error": error,
    }


def table_paths(out: Path, name: str) -> tuple[Path, Path]:
    return out / f"{name}.csv", out / f"{name}.json"


def read_table(out: Path, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Settings and rows of an experiment folder (empty when there is none yet)."""
    _, json_path = table_paths(out, name)
    if not json_path.is_file():
        return {}, []
    try:
        payload = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {json_path}: {exc}") from None
    if payload.get("schema") != SCHEMA:
        raise UsageError(f"{json_path} is not a castbench experiment table")
    return payload.get("settings", {}), list(payload.get("rows", []))


def write_table(
    out: Path, experiment: Experiment, settings: Settings, rows: list[dict[str, Any]]
) -> None:
    csv_path, json_path = table_paths(out, experiment.name)
    complete = [{c: r.get(c) for c in COLUMNS} for r in rows]
    payload = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment.name,
        "seed_part": experiment.part,
        "title": experiment.title,
        "settings": settings.comparable() | {"runs": settings.runs_for(experiment)},
        "rows": complete,
    }
    atomic_write_text(json_path, json_text(payload))
    atomic_write_text(csv_path, csv_text(complete, COLUMNS))
    if experiment.repeated or any((r.get("run") or 1) > 1 for r in complete):
        write_summary(out, experiment.name, complete)


def summary_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    return metrics.summarize_runs(ok, by=SUMMARY_BY)


def write_summary(out: Path, name: str, rows: Sequence[dict[str, Any]]) -> None:
    summary = [
        {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
        for row in summary_rows(rows)
    ]
    columns = [*SUMMARY_BY, "runs"] + [
        f"{c}_{s}" for c in metrics.METRIC_COLUMNS for s in ("mean", "sd", "ci95_low", "ci95_high")
    ]
    for row in summary:
        for column in metrics.METRIC_COLUMNS:
            if f"{column}_mean" in row:
                row[column] = metrics.format_mean_sd(row[f"{column}_mean"], row[f"{column}_sd"])
    columns += list(metrics.METRIC_COLUMNS)
    atomic_write_text(out / f"{name}_summary.csv", csv_text(summary, columns))
    atomic_write_text(out / f"{name}_summary.json", json_text({"summary": summary}))
