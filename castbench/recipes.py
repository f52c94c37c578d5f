"""Training recipes: the optimisation schedule a run uses unless a flag says otherwise.

- ``seed``: the seed study's schedule (Adam at a constant 1e-4, batch 4, 10 epochs, each
  backbone's native size). It assumes ImageNet weights; from random weights it rarely learns in
  a CPU budget.
- ``scratch``: for random initial weights on a CPU (``--weights none``, the whole network
  trained): a small input, larger batches, a higher peak learning rate reached by a linear
  warm-up and lowered along a cosine to zero, decoupled weight decay (AdamW) and mirror-image
  augmentation. The numbers come from the runs listed in the README's "Training from random
  weights" section.

``auto`` picks ``scratch`` when the backbone starts from random weights and trains, ``seed``
otherwise. Precise batch norm (``castbench.precise_bn``) is decided apart from the recipe: on
for a backbone that trains from random weights, off otherwise, unless ``--precise-bn`` says.
"""

from __future__ import annotations

from dataclasses import dataclass

from castbench.errors import UsageError
from castbench.spec import weights_choice

SCHEDULES = ("constant", "cosine")
# Batches averaged by precise batch norm when it is on by default (Detectron2's default; the
# moving statistics stop changing by more than their own batch-to-batch noise well before).
DEFAULT_PRECISE_BN_BATCHES = 200


@dataclass(frozen=True)
class Recipe:
    name: str
    epochs: int
    batch_size: int
    learning_rate: float  # the peak rate for the cosine schedule
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    size: int | None = None  # None: the backbone's native size
    # Augmentation for a run (and an experiment's rows) that names none of its own.
    augment: str = "none"

    def summary(self) -> str:
        decay = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        warm = f", {self.warmup_epochs:g}-epoch warm-up" if self.warmup_epochs else ""
        return (
            f"recipe {self.name}: {self.schedule} lr {self.learning_rate:g}{warm}{decay}, "
            f"batch {self.batch_size}, {self.epochs} epoch(s), size {self.size or 'native'}, "
            f"augment {self.augment}"
        )


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("seed", epochs=10, batch_size=4, learning_rate=1e-4),
        Recipe(
            "scratch",
            epochs=12,
            batch_size=16,
            learning_rate=2e-3,
            schedule="cosine",
            warmup_epochs=0.5,
            weight_decay=1e-4,
            size=128,  # 96 px lost pinholes and thin cracks: 74.7 % against 90.9 % at 128
            augment="flip",
        ),
    )
}
RECIPE_CHOICES = ("auto", *RECIPES)


def from_scratch(weights: str, trainable: str) -> bool:
    """Whether the backbone trains from random weights (the case the scratch recipe is for)."""
    return weights_choice(weights) == "none" and trainable == "all"


def choose(name: str, weights: str = "none", trainable: str = "all") -> Recipe:
    """The recipe ``name`` names; ``auto``: scratch from random weights, seed otherwise."""
    key = name.strip().lower()
    if key == "auto":
        key = "scratch" if from_scratch(weights, trainable) else "seed"
    try:
        return RECIPES[key]
    except KeyError:
        raise UsageError(
            f"unknown recipe {name!r}; choose from: {', '.join(RECIPE_CHOICES)}"
        ) from None


def precise_bn_batches(asked: int | None, weights: str, trainable: str) -> int:
    """Batches for precise batch norm: what ``--precise-bn`` asked, else the default when the
    backbone trains from random weights, else 0 (off)."""
    if asked is not None:
        if asked < 0:
            raise UsageError(f"--precise-bn must be 0 (off) or a number of batches, got {asked}")
        if asked and trainable == "head":
            raise UsageError(
                "--precise-bn recomputes the statistics of batch norm that trains; with "
                "--trainable head the backbone's batch norm is frozen"
            )
        return asked
    return DEFAULT_PRECISE_BN_BATCHES if from_scratch(weights, trainable) else 0


@dataclass(frozen=True)
class Resolved:
    """A recipe with the flags given on the command line applied over it."""

    recipe: Recipe
    precise_bn: int

    @property
    def name(self) -> str:
        return self.recipe.name

    def schedule_fields(self) -> dict[str, object]:
        """What ``TrainConfig`` and the experiment settings record about the schedule, beyond
        epochs, batch, rate and size (named as both name them)."""
        return {
            "recipe": self.recipe.name,
            "schedule": self.recipe.schedule,
            "warmup_epochs": self.recipe.warmup_epochs,
            "weight_decay": self.recipe.weight_decay,
            "precise_bn": self.precise_bn,
            "augment": self.recipe.augment,
        }


def resolve(
    name: str,
    weights: str = "none",
    trainable: str = "all",
    precise_bn: int | None = None,
    **given: object,
) -> Resolved:
    """``choose(name)`` with every field in ``given`` that is not None replacing the recipe's
    (``epochs``, ``batch_size``, ``learning_rate``, ``schedule``, ``warmup_epochs``,
    ``weight_decay``, ``size``, ``augment``)."""
    from dataclasses import replace

    recipe = choose(name, weights, trainable)
    overrides = {k: v for k, v in given.items() if v is not None}
    if "schedule" in overrides and overrides["schedule"] not in SCHEDULES:
        raise UsageError(
            f"unknown schedule {overrides['schedule']!r}; choose from: {', '.join(SCHEDULES)}"
        )
    return Resolved(
        replace(recipe, **overrides), precise_bn_batches(precise_bn, weights, trainable)
    )


def fitted_size(min_size: int, native_size: int, asked: int | None) -> int:
    """The input size for a backbone: ``asked`` raised to its minimum; native when None."""
    return native_size if asked is None else max(asked, min_size)
