"""The seed study's accuracy experiments, as data, and the runner that fills their tables.

Four grids, each one tidy table (``<name>.csv`` + ``<name>.json`` in the output folder, one row
per configuration and decision threshold) with the seed's columns (accuracy %, recall %, F1)
plus precision and specificity, the confusion counts, and the training wall time and seconds per
epoch of the run behind the row:

- ``architecture`` (seed Part 1): EfficientNetB4 + dense head + batch 4, and its ablations:
  no Dense(1024), no dropout, augmentation (default / additional), batch 8.
- ``augmentation`` (seed Part 2): the eleven augmentation presets on EfficientNetB4 + dense head
  + batch 4.
- ``backbone`` (seed Part 3): the ten backbones with the GAP + Dense(1) head, batch 4.
- ``threshold`` (seed Part 5): EfficientNetB4 + dense head + ``no-rotation`` augmentation +
  batch 4, R runs with different seeds, thresholds 0.1–0.5; ``threshold_summary.csv`` holds the
  mean ± sample sd per threshold.

Each finished configuration is written at once (temporary file + ``os.replace``); ``--resume``
skips the configurations already in the folder. The full per-run outputs of ``castbench train``
(metrics per threshold, confusion matrix, curves, weights) sit under ``runs/<row>/``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from castbench import backbones, metrics
from castbench.errors import UsageError
from castbench.files import atomic_write_text, csv_text
from castbench.spec import ModelSpec
from castbench.training import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    TrainConfig,
    TrainResult,
    json_text,
)

SCHEMA = "castbench.experiment"
SCHEMA_VERSION = 1

# One table layout for every experiment and for the seed's reference numbers (results/seed).
COLUMNS: tuple[str, ...] = (
    "experiment", "row", "variant", "group", "backbone", "input_size", "head", "augment",
    "batch_size", "epochs", "seed", "run", "recipe", "precise_bn", "threshold",
    "accuracy_pct", "recall_pct", "f1", "precision_pct", "specificity_pct",
    "tp", "fp", "tn", "fn", "n_test",
    "train_s", "s_per_epoch", "epoch_s_first", "epoch_s_median_after_first", "best_epoch",
    "params_total", "source", "status", "error", "run_dir",
)  # fmt: skip
SUMMARY_BY = ("threshold",)


@dataclass(frozen=True)
class Row:
    """One configuration of a grid; ``variant`` is the seed's label for it."""

    key: str
    variant: str
    group: str = ""
    backbone: str = "EfficientNetB4"
    head: str = "dense"
    dense: bool = True
    dropout: float = 0.5
    augment: str = "none"
    batch_factor: int = 1  # batch size = the base batch size x this (the seed's "batch 8" rows)
    seed_offset: int = 0  # run r of a repeated grid trains with seed + r - 1
    run: int = 1
    config_key: str = ""  # the configuration's key when ``key`` names one of its runs
    seed_size: int | None = None  # the input size the seed used (reference only)


@dataclass(frozen=True)
class Experiment:
    name: str
    part: str
    title: str
    rows: Callable[[int], list[Row]]  # runs -> rows
    thresholds: tuple[float, ...] = (0.5,)
    repeated: bool = False  # True: the grid is R runs of one configuration

    def describe(self) -> str:
        return f"{self.name}: seed {self.part}, {self.title}"


def _architecture(_runs: int) -> list[Row]:
    return [
        Row("base", "Base Model (EffNet)", seed_size=512),
        Row("base-bs8", "Base Model + Batch size 8", batch_factor=2, seed_size=512),
        Row("no-dense", "No Dense", dense=False, seed_size=512),
        Row("no-dropout", "No Dropout", dropout=0.0, seed_size=512),
        Row("default-aug", "Default Augmentation", augment="default", seed_size=512),
        Row("aug", "Augmentation + Dense + Dropout", augment="additional", seed_size=512),
        Row(
            "aug-bs8",
            "Augmentation + Dense + Dropout + Batch size 8",
            augment="additional",
            batch_factor=2,
            seed_size=512,
        ),
    ]


# preset -> (seed group, seed label); the seed's first "Default Augmentation" row is its
# baseline without any augmentation.
AUGMENTATION_VARIANTS: dict[str, tuple[str, str]] = {
    "none": ("default", "Default Augmentation"),
    "default": ("default", "Default Augmentation (random_hue & random_contrast only)"),
    "additional": ("additional", "Additional Augmentation"),
    "no-hue-contrast": ("additional", "Augmentation (No random_hue & No random_contrast only)"),
    "no-shift": ("additional", "No Shift (width & height)"),
    "no-rotation": ("additional", "No Rotation"),
    "no-brightness": ("additional", "No Brightness"),
    "no-shear": ("additional", "No Shear"),
    "no-zoom": ("additional", "No Zoom"),
    "no-fill-mode": ("additional", "No Fill_mode"),
    "no-flip": ("additional", "No Flip (Horizontal & Vertical)"),
}


def _augmentation(_runs: int) -> list[Row]:
    return [
        Row(preset, label, group=group, augment=preset, seed_size=512)
        for preset, (group, label) in AUGMENTATION_VARIANTS.items()
    ]


def _backbone(_runs: int) -> list[Row]:
    return [
        Row(
            b.key,
            b.name,
            group=b.family,
            backbone=b.name,
            head="gap",
            seed_size=224 if b.name == "NASNetMobile" else 512,
        )
        for b in backbones.BACKBONES
    ]


def _threshold(runs: int) -> list[Row]:
    return [
        Row(
            f"run{r:02d}",
            "EfficientNetB4 + Additional Augmentation (no rotation) + Batch Size 4",
            augment="no-rotation",
            seed_offset=r - 1,
            run=r,
            seed_size=512,
        )
        for r in range(1, runs + 1)
    ]


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "architecture",
            "Part 1",
            "EfficientNetB4 + dense head + batch 4 and its ablations",
            _architecture,
        ),
        Experiment(
            "augmentation",
            "Part 2",
            "the eleven augmentation presets on EfficientNetB4 + dense head + batch 4",
            _augmentation,
        ),
        Experiment("backbone", "Part 3", "ten backbones with the GAP head", _backbone),
        Experiment(
            "threshold",
            "Part 5",
            "EfficientNetB4 + no-rotation augmentation + batch 4, repeated runs, thresholds "
            "0.1-0.5",
            _threshold,
            thresholds=metrics.SEED_THRESHOLDS,
            repeated=True,
        ),
    )
}
DEFAULT_RUNS = {"threshold": 10}


def get(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name.strip().lower()]
    except KeyError:
        raise UsageError(
            f"unknown experiment {name!r}; choose from: {', '.join(EXPERIMENTS)}"
        ) from None


@dataclass(frozen=True)
class Settings:
    """The command-line choices that apply to every row of a grid."""

    data: str | None = None
    runs: int | None = None
    epochs: int = DEFAULT_EPOCHS
    size: int | None = None  # None: each backbone's native size
    batch: int = DEFAULT_BATCH
    seed: int = 0
    learning_rate: float = DEFAULT_LR
    jit_compile: bool | str = "auto"  # does not change results; not compared on --resume
    recipe: str = "seed"
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    precise_bn: int = 0

    def validate(self, experiment: Experiment) -> None:
        if self.batch <= 0:
            raise UsageError(f"batch size must be a positive integer, got {self.batch}")
        if self.epochs <= 0:
            raise UsageError(f"epochs must be a positive integer, got {self.epochs}")
        if self.runs is not None and self.runs <= 0:
            raise UsageError(f"runs must be a positive integer, got {self.runs}")
        if self.size is not None and self.size <= 0:
            raise UsageError(f"size must be a positive integer, got {self.size}")
        if self.data is not None and not Path(self.data).is_dir():
            raise UsageError(f"data folder not found: {self.data}")

    def runs_for(self, experiment: Experiment) -> int:
        return self.runs or DEFAULT_RUNS.get(experiment.name, 1)

    def comparable(self) -> dict[str, Any]:
        """What must agree between a folder's finished rows and a resumed run."""
        return {
            "data": self.data,
            "epochs": self.epochs,
            "size": self.size,
            "batch": self.batch,
            "seed": self.seed,
            "learning_rate": self.learning_rate,
            "recipe": self.recipe,
            "schedule": self.schedule,
            "warmup_epochs": self.warmup_epochs,
            "weight_decay": self.weight_decay,
            "precise_bn": self.precise_bn,
        }


def input_size_for(backbone: str, size: int | None) -> int:
    """``size`` clamped up to the backbone's minimum; its native size when ``size`` is None."""
    record = backbones.get(backbone)
    if size is None:
        return record.native_size
    return max(size, record.min_size)


def plan(experiment: Experiment, settings: Settings) -> list[tuple[Row, TrainConfig]]:
    """The training configuration of each row, in table order."""
    planned = []
    runs = settings.runs_for(experiment)
    rows = experiment.rows(runs)
    if not experiment.repeated:
        rows = repeated(rows, runs)
    for row in rows:
        spec = ModelSpec(
            backbone=backbones.get(row.backbone).name,
            size=input_size_for(row.backbone, settings.size),
            head=row.head,
            dense=row.dense,
            dropout=row.dropout,
        )
        config = TrainConfig(
            spec=spec,
            data=settings.data,
            augment=row.augment,
            batch_size=settings.batch * row.batch_factor,
            epochs=settings.epochs,
            seed=settings.seed + row.seed_offset,
            learning_rate=settings.learning_rate,
            jit_compile=settings.jit_compile,
            recipe=settings.recipe,
            schedule=settings.schedule,
            warmup_epochs=settings.warmup_epochs,
            weight_decay=settings.weight_decay,
            precise_bn=settings.precise_bn,
            thresholds=tuple(sorted(set(metrics.SWEEP_THRESHOLDS) | set(experiment.thresholds))),
        )
        planned.append((row, config))
    return planned


def repeated(rows: list[Row], runs: int) -> list[Row]:
    """Each row ``runs`` times, run r with seed offset r - 1 and key ``<row>-run<r>``; one run
    keeps the plain keys (and so the folders of single-run tables)."""
    if runs == 1:
        return rows
    return [
        replace(row, key=f"{row.key}-run{r:02d}", seed_offset=r - 1, run=r, config_key=row.key)
        for row in rows
        for r in range(1, runs + 1)
    ]


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
    }


def _error_row(experiment: Experiment, row: Row, config: TrainConfig, error: str) -> dict:
    return {
        **_row_identity(experiment, row, config),
        "source": "castbench",
        "status": "error",
        "error": error,
    }


# ---------------------------------------------------------------------------------------------
# the folder


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
    if experiment.repeated:
        write_summary(out, experiment.name, complete)


def summary_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    return metrics.summarize_runs(ok, by=SUMMARY_BY)


def write_summary(out: Path, name: str, rows: Sequence[dict[str, Any]]) -> None:
    summary = [
        {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
        for row in summary_rows(rows)
    ]
    columns = ["threshold", "runs"] + [
        f"{c}_{s}" for c in metrics.METRIC_COLUMNS for s in ("mean", "sd")
    ]
    for row in summary:
        for column in metrics.METRIC_COLUMNS:
            if f"{column}_mean" in row:
                row[column] = metrics.format_mean_sd(row[f"{column}_mean"], row[f"{column}_sd"])
    columns += list(metrics.METRIC_COLUMNS)
    atomic_write_text(out / f"{name}_summary.csv", csv_text(summary, columns))
    atomic_write_text(out / f"{name}_summary.json", json_text({"summary": summary}))


Trainer = Callable[..., TrainResult]


def run_experiment(
    name: str,
    out: str | os.PathLike,
    settings: Settings,
    resume: bool = False,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    trainer: Trainer | None = None,
) -> list[dict[str, Any]]:
    """Train every row of the grid not yet in ``out``; return the table's rows."""
    experiment = get(name)
    settings.validate(experiment)
    out_dir = Path(out)
    planned = plan(experiment, settings)
    if only:
        wanted = {w.strip().lower() for item in only for w in item.split(",") if w.strip()}
        known = {row.key for row, _ in planned} | {row.config_key for row, _ in planned}
        unknown = wanted - known
        if unknown:
            choices = dict.fromkeys(row.config_key or row.key for row, _ in planned)
            raise UsageError(
                f"unknown row(s) {', '.join(sorted(unknown))} in {experiment.name}; "
                f"choose from: {', '.join(choices)}"
            )
        planned = [(r, c) for r, c in planned if r.key in wanted or r.config_key in wanted]
    for _, config in planned:
        config.spec.validate()

    old_settings, rows = read_table(out_dir, experiment.name)
    if rows and not resume:
        raise UsageError(
            f"{out_dir} already holds {experiment.name} results; pass --resume to continue "
            "them or choose another --out"
        )
    if rows and old_settings:
        differ = {
            k: (old_settings.get(k), v)
            for k, v in settings.comparable().items()
            if old_settings.get(k) != v
        }
        if differ:
            detail = ", ".join(f"{k} {a!r} there, {b!r} now" for k, (a, b) in differ.items())
            raise UsageError(f"cannot resume {out_dir}: settings differ ({detail})")
    done = {r["row"] for r in rows if r.get("status") == "ok"}
    rows = [r for r in rows if r.get("status") == "ok"]  # failed rows are retried

    if trainer is None:
        from castbench.training import train as trainer

    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir, experiment, settings, rows)
    todo = [(row, config) for row, config in planned if row.key not in done]
    log(
        f"experiment {experiment.describe()}; batch {settings.batch}, {settings.epochs} "
        f"epoch(s), size {settings.size or 'native'}: {len(planned)} row(s), "
        f"{len(planned) - len(todo)} already done, {len(todo)} to train -> {out_dir}"
    )
    started = time.perf_counter()
    for index, (row, config) in enumerate(todo, 1):
        run_dir = Path("runs") / row.key
        log(f"[{index}/{len(todo)}] {experiment.name} / {row.key}: {row.variant}")
        try:
            result = trainer(config, out_dir / run_dir, log=log)
        except UsageError:
            raise
        except Exception as exc:  # one failed row must not lose the others
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log(f"  row {row.key} failed: {message}")
            new = [_error_row(experiment, row, config, message)]
        else:
            new = table_rows(experiment, row, config, result, str(run_dir))
        rows = [r for r in rows if r["row"] != row.key] + new
        rows.sort(key=_order_in(planned, experiment))
        write_table(out_dir, experiment, settings, rows)
    log(f"experiment {experiment.name} done in {time.perf_counter() - started:.1f} s")
    return rows


def _order_in(planned: list[tuple[Row, TrainConfig]], experiment: Experiment):
    position = {row.key: i for i, (row, _) in enumerate(planned)}

    def key(r: dict[str, Any]) -> tuple[float, float]:
        return (position.get(r["row"], math.inf), float(r.get("threshold") or 0))

    return key


def failed_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") != "ok"]


def seed_reference_rows(seed_tables: Path) -> dict[str, list[dict[str, Any]]]:
    """The seed's Parts 1, 2, 3 and 5 (its transcribed CSV tables) in the experiment layout."""
    import csv

    def read(name: str) -> list[dict[str, str]]:
        with (seed_tables / name).open(newline="") as handle:
            return list(csv.DictReader(handle))

    def base(experiment: Experiment, row: Row) -> dict[str, Any]:
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
            "source": "seed",
            "status": "ok",
        }

    def numbers(source: dict[str, str]) -> dict[str, Any]:
        return {
            "accuracy_pct": float(source["accuracy_pct"]),
            "recall_pct": float(source["recall_pct"]),
            "f1": float(source["f1"]),
        }

    tables: dict[str, list[dict[str, Any]]] = {}
    by_label = {r["variant"]: r for r in read("part1_architecture.csv")}
    experiment = EXPERIMENTS["architecture"]
    tables["architecture"] = [
        {**base(experiment, row), "threshold": 0.5, **numbers(by_label[row.variant])}
        for row in experiment.rows(1)
    ]
    by_label = {r["variant"]: r for r in read("part2_augmentation.csv")}
    experiment = EXPERIMENTS["augmentation"]
    tables["augmentation"] = [
        {**base(experiment, row), "threshold": 0.5, **numbers(by_label[row.variant])}
        for row in experiment.rows(1)
    ]
    by_label = {r["backbone"]: r for r in read("part3_backbones.csv")}
    experiment = EXPERIMENTS["backbone"]
    tables["backbone"] = [
        {**base(experiment, row), "threshold": 0.5, **numbers(by_label[row.backbone])}
        for row in experiment.rows(1)
    ]
    experiment = EXPERIMENTS["threshold"]
    part5 = read("part5_thresholds.csv")
    rows_by_run = {row.run: row for row in experiment.rows(10)}
    tables["threshold"] = [
        {
            **base(experiment, rows_by_run[int(r["run"])]),
            "threshold": float(r["threshold"]),
            **numbers(r),
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
