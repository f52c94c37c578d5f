"""The seed study's four accuracy experiments as data: each grid is a list of rows (one
configuration each), and ``repeated`` turns a grid into rows x runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from castbench import backbones, metrics
from castbench.errors import UsageError


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
