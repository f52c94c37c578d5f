"""What decides which network gets built, without importing Keras (so the CLI can check input
before the slow framework start)."""

from __future__ import annotations

from dataclasses import dataclass

from castbench import backbones
from castbench.backbones import Backbone
from castbench.errors import UsageError

HEADS = ("gap", "dense")
# What a training step updates: the whole network (fine-tuning, as the seed trained), or the head
# alone on a frozen backbone (feature extraction: no backbone gradients, batch norm in inference
# mode), the cheap way to adapt ImageNet weights.
TRAINABLE = ("all", "head")


def check_trainable(value: str) -> None:
    if value not in TRAINABLE:
        raise UsageError(f"unknown --trainable {value!r}; choose from: {', '.join(TRAINABLE)}")


WEIGHT_CHOICES_HELP = "none (random init, default) | imagenet (local Keras cache only) | PATH"


def weights_choice(weights: str) -> str:
    """What ``--weights`` asks for: ``none`` (the seeded random initialisation), ``imagenet``,
    or ``file`` (anything else is a weights file's path)."""
    choice = weights.strip().lower()
    return choice if choice in ("none", "imagenet") else "file"


@dataclass(frozen=True)
class ModelSpec:
    """A backbone, its input size, its head and its initial weights."""

    backbone: str
    size: int | None = None  # None: the backbone's native size
    head: str = "gap"
    dense: bool = True  # only for the ``dense`` head
    dropout: float = 0.5  # only for the ``dense`` head; 0 drops the layer
    dense_units: int = 1024
    weights: str = "none"
    trainable: str = "all"  # all | head (frozen backbone)

    @property
    def record(self) -> Backbone:
        return backbones.get(self.backbone)

    @property
    def backbone_frozen(self) -> bool:
        return self.trainable == "head"

    @property
    def input_size(self) -> int:
        return self.size or self.record.native_size

    @property
    def head_label(self) -> str:
        """``gap``, ``dense``, or ``dense`` with its ablations, e.g. ``dense+no-dropout``."""
        if self.head == "gap":
            return "gap"
        parts = ["dense"]
        if not self.dense:
            parts.append("no-dense")
        if self.dropout <= 0:
            parts.append("no-dropout")
        return "+".join(parts)

    def validate(self) -> None:
        """Reject impossible requests before any model is built."""
        if self.head not in HEADS:
            raise UsageError(f"unknown head {self.head!r}; choose from: {', '.join(HEADS)}")
        check_trainable(self.trainable)
        record = self.record
        if self.input_size < record.min_size:
            raise UsageError(
                f"{record.name} needs an input of at least {record.min_size}x{record.min_size} px,"
                f" got {self.input_size}"
            )
