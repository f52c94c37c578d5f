"""The seed study's transcribed tables (its Parts 1, 2, 3 and 5) in the experiment table
layout, so its numbers sit beside castbench's in one report (``results/seed``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from castbench.experiments.grids import EXPERIMENTS, Experiment, Row
from castbench.experiments.plan import Settings
from castbench.experiments.tables import COLUMNS, SCHEMA, SCHEMA_VERSION, table_paths, write_summary
from castbench.files import atomic_write_text, csv_text
from castbench.spec import ModelSpec
from castbench.training import DEFAULT_BATCH, json_text

# experiment -> (seed table, the column that names a row there, the Row field it matches)
_SINGLE_TABLES = {
    "architecture": ("part1_architecture.csv", "variant", "variant"),
    "augmentation": ("part2_augmentation.csv", "variant", "variant"),
    "backbone": ("part3_backbones.csv", "backbone", "backbone"),
}


def _read(seed_tables: Path, name: str) -> list[dict[str, str]]:
    with (seed_tables / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def _base(experiment: Experiment, row: Row) -> dict[str, Any]:
    spec = ModelSpec(row.backbone, size=row.seed_size, head=row.head, dense=row.dense,
                     dropout=row.dropout)  # fmt: skip
    return {
        "experiment": experiment.name,
        "row": row.key,
        "variant": row.variant,
        "group": row.group,
        "backbone": spec.record.name,
        "input_size": row.seed_size,
        "head": spec.head_label,
        "augment": row.augment,
        "batch_size": DEFAULT_BATCH * row.batch_factor,
        "run": row.run,
        "backend": "tensorflow",  # the seed's Keras 2 ran on TensorFlow (tf.image augmentation)
        "source": "seed",
        "status": "ok",
    }


def _numbers(source: dict[str, str]) -> dict[str, Any]:
    return {
        "accuracy_pct": float(source["accuracy_pct"]),
        "recall_pct": float(source["recall_pct"]),
        "f1": float(source["f1"]),
    }


def seed_reference_rows(seed_tables: Path) -> dict[str, list[dict[str, Any]]]:
    """The seed's Parts 1, 2, 3 and 5 (its transcribed CSV tables) in the experiment layout."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, (file, column, field) in _SINGLE_TABLES.items():
        by_label = {r[column]: r for r in _read(seed_tables, file)}
        experiment = EXPERIMENTS[name]
        tables[name] = [
            {**_base(experiment, row), "threshold": 0.5,
             **_numbers(by_label[getattr(row, field)])}
            for row in experiment.rows(1)
        ]  # fmt: skip
    experiment = EXPERIMENTS["threshold"]
    part5 = _read(seed_tables, "part5_thresholds.csv")
    rows_by_run = {row.run: row for row in experiment.rows(10)}
    tables["threshold"] = [
        {
            **_base(experiment, rows_by_run[int(r["run"])]),
            "threshold": float(r["threshold"]),
            **_numbers(r),
        }
        for r in sorted(part5, key=lambda r: (int(r["run"]), float(r["threshold"])))
    ]
    return tables


def write_seed_reference(seed_tables: Path, out: Path) -> list[Path]:
    """Write the seed's tables into ``out`` in the experiment layout (used for results/seed)."""
    written = []
    for name, rows in seed_reference_rows(seed_tables).items():
        experiment = EXPERIMENTS[name]
        settings = Settings(runs=10 if experiment.repeated else None, epochs=0, batch=4)
        complete = [{c: r.get(c) for c in COLUMNS} for r in rows]
        payload = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "experiment": name,
            "seed_part": experiment.part,
            "title": experiment.title,
            "source": "seed",
            "settings": settings.comparable()
            | {"runs": settings.runs_for(experiment), "epochs": None},  # fmt: skip
            "rows": complete,
        }
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = table_paths(out, name)
        atomic_write_text(json_path, json_text(payload))
        atomic_write_text(csv_path, csv_text(complete, COLUMNS))
        written += [csv_path, json_path]
        if experiment.repeated:
            write_summary(out, name, complete)
            written += [out / f"{name}_summary.csv", out / f"{name}_summary.json"]
    return written
