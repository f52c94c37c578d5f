"""What an experiment trains: the command line's settings applied to every row of a grid."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from castbench import backbones, metrics
from castbench.augment import get_preset
from castbench.errors import UsageError
from castbench.experiments.grids import DEFAULT_RUNS, Experiment, Row, repeated
from castbench.recipes import fitted_size
from castbench.runtime import keras_backend_name
from castbench.spec import ModelSpec
from castbench.training import DEFAULT_BATCH, DEFAULT_EPOCHS, DEFAULT_LR, TrainConfig


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
    augment: str = "none"  # for the rows that name no augmentation of their own
    # Trains every row on this backbone instead of the grid's (the seed's Parts 1, 2 and 5
    # ran EfficientNetB4; a user studies the backbone they shortlisted). None: the grid's.
    backbone: str | None = None
    # Trains every row with this head instead of the grid's (the dense head's 1,024 ReLU units
    # can all die early from random weights, leaving a constant score). None: the grid's.
    head: str | None = None
    # Every row trains with this augmentation (``--aug``), where ``augment`` only fills the rows
    # that name none. None: the rows' own.
    augment_override: str | None = None

    def validate(self, experiment: Experiment) -> None:
        if self.backbone is not None:
            if experiment.name == "backbone":
                raise UsageError(
                    "--backbone replaces the grid's backbone; the backbone experiment compares "
                    "all ten (use --only to pick some)"
                )
            backbones.get(self.backbone)  # an unknown name is a UsageError listing the known
        # an unknown head is refused with every planned row's ModelSpec.validate()
        if self.head is not None and experiment.name == "architecture":
            raise UsageError("--head replaces the grid's head; the architecture experiment "
                             "compares heads (use --only to pick rows)")  # fmt: skip
        if self.augment_override is not None:
            if experiment.name in ("architecture", "augmentation"):
                raise UsageError(f"--aug sets every row's augmentation; the {experiment.name} "
                                 "experiment compares augmentations")  # fmt: skip
            get_preset(self.augment_override)  # an unknown preset lists the known ones
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
            "backbone": self.backbone,
            "head": self.head,
            "augment_override": self.augment_override,
            "backend": keras_backend_name(),  # rows from two backends are two experiments
            **self.schedule_fields(),
        }

    def schedule_fields(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "schedule": self.schedule,
            "warmup_epochs": self.warmup_epochs,
            "weight_decay": self.weight_decay,
            "precise_bn": self.precise_bn,
            "augment": self.augment,
        }


def input_size_for(backbone: str, size: int | None) -> int:
    """``size`` clamped up to the backbone's minimum; its native size when ``size`` is None."""
    record = backbones.get(backbone)
    return fitted_size(record.min_size, record.native_size, size)


def plan(experiment: Experiment, settings: Settings) -> list[tuple[Row, TrainConfig]]:
    """The training configuration of each row, in table order."""
    planned = []
    runs = settings.runs_for(experiment)
    rows = experiment.rows(runs)
    if not experiment.repeated:
        rows = repeated(rows, runs)
    for row in rows:
        if settings.backbone:
            row = _on_backbone(row, backbones.get(settings.backbone).name)
        batch = settings.batch * row.batch_factor
        row = replace(row, variant=_with_batch(row.variant, batch))
        row = _as_run(row, settings.head, settings.augment_override)
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
            batch_size=batch,
            epochs=settings.epochs,
            seed=settings.seed + row.seed_offset,
            learning_rate=settings.learning_rate,
            jit_compile=settings.jit_compile,
            **settings.schedule_fields() | {"augment": row_augment(row, settings)},
            thresholds=tuple(sorted(set(metrics.SWEEP_THRESHOLDS) | set(experiment.thresholds))),
        )
        planned.append((row, config))
    return planned


def _as_run(row: Row, head: str | None, augment: str | None) -> Row:
    """The row with the head and augmentation given on the command line, its label saying so
    (the seed's labels name the head and augmentation they ran with)."""
    changed = []
    if head and head != row.head:
        changed.append(f"{head} head")
    if augment and augment != row.augment:
        changed.append(f"augment {augment}")
    if not changed:
        return row
    return replace(
        row,
        head=head or row.head,
        augment=augment or row.augment,
        variant=f"{row.variant}; run with {', '.join(changed)}",
    )


def row_augment(row: Row, settings: Settings) -> str:
    """A row's own augmentation; the recipe's (``settings.augment``) where the row has none."""
    return row.augment if row.augment != "none" else settings.augment


# The seed's labels name the batch size its rows ran with ("+ Batch Size 4", "+ Batch size 8").
_BATCH_IN_LABEL = re.compile(r"(\b[Bb]atch [Ss]ize )\d+")


def _with_batch(variant: str, batch: int) -> str:
    """The label naming the batch the row trains with (the recipe's may not be the seed's)."""
    return _BATCH_IN_LABEL.sub(lambda m: f"{m.group(1)}{batch}", variant)


# How the seed's labels name its backbone; a row moved to another backbone is labelled with that
# one's name, so a table or a report never shows EfficientNetB4 beside another model's numbers.
_SEED_BACKBONE_LABELS = ("EfficientNetB4", "EffNet")


def _on_backbone(row: Row, name: str) -> Row:
    variant = row.variant
    for label in _SEED_BACKBONE_LABELS:
        variant = variant.replace(label, name)
    return replace(row, backbone=name, variant=variant)
