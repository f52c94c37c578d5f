"""The correctness gate: a runtime's artifact is compared with Keras on a fixed gate batch, on
the head's logit (before the sigmoid). Probabilities saturate: with random weights many
backbones give every image the same probability, so any artifact, even a wrong one, would agree
with Keras. The logit keeps the differences between images.

The tolerance is relative: float32 rounding scales with the values, and with random weights
some backbones' features shrink layer by layer (MobileNetV2's logits are ~1e-11 at 224 px), so
an absolute tolerance would wave through anything there. It is ``RELATIVE_TOLERANCE`` times the
largest |logit| Keras gives on the gate batch. Float32 artifacts of the same weights differ from
Keras by ~1e-6 of the logits' spread.

A comparison can judge only where the compared values differ between images by much more than
the tolerance; a gate whose spread is below ``JUDGEABLE`` x the tolerance (the logits all but
equal) is ``ungated``: the row is timed, but nothing says the artifact computes the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

RELATIVE_TOLERANCE = 1e-4  # of the largest |logit|, for float32 artifacts of the same weights
# A quantized artifact may move a logit by less than this fraction of the logits' spread over
# the gate batch: any constant output is off by at least half the spread somewhere, so a
# quantized artifact passes only where it follows the images better than a constant could. What
# quantization costs in recall is for a test split to say; this stops an artifact that computes
# something else.
QUANTIZED_SPREAD = 0.5
JUDGEABLE = 100  # the spread over the gate batch must be at least this many tolerances
GATE_IMAGES = 8  # at least this many images, whatever the batch size


@dataclass(frozen=True)
class Verdict:
    """What the gate found: ``status`` is ok, mismatch or ungated."""

    status: str
    output_range: float  # max - min of Keras's logits over the gate batch
    max_abs_diff: float
    tolerance: float  # absolute
    rule: str  # what the tolerance is, in words
    unjudged: str | None = None  # why a verdict that would be a mismatch is not one

    @property
    def max_rel_diff(self) -> float:
        return self.max_abs_diff / self.output_range if self.output_range > 0 else float("inf")

    def fields(self) -> dict[str, Any]:
        """The gate's columns of a timing row."""
        return {
            "gate_output_range": self.output_range,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "gate_tolerance": self.tolerance,
        }

    def error(self, runtime: str) -> str | None:
        """One line for the row's error cell; None when the gate passed."""
        if self.status == "mismatch":
            return (
                f"max |{runtime} - keras| logit = {self.max_abs_diff:.3g} on the gate batch, "
                f"over the tolerance {self.tolerance:.3g} ({self.rule})"
            )
        if self.status == "ungated" and self.unjudged:
            return (
                f"not verified: max |{runtime} - keras| logit = {self.max_abs_diff:.3g}, over "
                f"the tolerance {self.tolerance:.3g} ({self.rule}), but {self.unjudged}"
            )
        if self.status == "ungated":
            return (
                f"not verified: Keras's logits spread by {self.output_range:.3g} over the gate "
                f"batch, under {JUDGEABLE} x {RELATIVE_TOLERANCE:g} of the largest logit"
            )
        return None


def max_abs_diff(outputs: np.ndarray, reference: np.ndarray) -> float:
    outputs = np.asarray(outputs, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if outputs.shape != reference.shape:
        raise ValueError(f"runtime output shape {outputs.shape} is not Keras's {reference.shape}")
    return float(np.max(np.abs(outputs - reference)))


def judge(outputs: np.ndarray, reference: np.ndarray, precision: str = "float32",
          random_weights: bool = False) -> Verdict:  # fmt: skip
    """Compare a runtime's logits with Keras's (float32): a difference over the tolerance is a
    mismatch whatever the spread; otherwise the spread decides between ok and ungated (whether
    Keras's own logits tell images apart does not depend on the artifact's precision).

    One exception: a quantized artifact of a model with random weights (``random_weights``)
    that misses the tolerance is ``ungated``, not a mismatch, as long as its logits are finite.
    Random weights make activations collapse layer by layer (VGG16's logits span 0.001-0.011
    over calibration images at 224 px), so int8's steps are as large as the differences between
    images in every runtime alike; that is the model's property, not the artifact's. Such rows
    time the quantized graph and say they are not verified; quality needs trained weights."""
    diff = max_abs_diff(outputs, reference)
    reference = np.asarray(reference, dtype=np.float64)
    spread = float(np.ptp(reference))
    float_tolerance = RELATIVE_TOLERANCE * float(np.max(np.abs(reference)))
    tolerance, rule = float_tolerance, f"{RELATIVE_TOLERANCE:g} of the largest logit"
    if precision != "float32" and QUANTIZED_SPREAD * spread > float_tolerance:
        tolerance, rule = (
            QUANTIZED_SPREAD * spread,
            f"{precision}: {QUANTIZED_SPREAD:g} of the spread",
        )
    unjudged = None
    if not (np.isfinite(diff) and diff <= tolerance):
        status = "mismatch"
        if precision != "float32" and random_weights and np.isfinite(diff):
            status = "ungated"
            unjudged = f"{precision} of a model with random weights is not judged"
    elif spread == 0 or spread < JUDGEABLE * float_tolerance:
        status = "ungated"
    else:
        status = "ok"
    return Verdict(status, spread, diff, tolerance, rule, unjudged)


def gate_size(batch_size: int) -> int:
    """At least ``GATE_IMAGES`` and a whole number of batches, so a session made for one batch
    size runs them in chunks (a spread needs more than one image)."""
    return batch_size * -(-GATE_IMAGES // batch_size)


def gate_batch(input_size: int, batch_size: int, seed: int = 1) -> np.ndarray:
    """Random images for the gate of a float32 artifact (``gate_size`` of them)."""
    rng = np.random.default_rng(seed)
    shape = (gate_size(batch_size), input_size, input_size, 3)
    return rng.uniform(-1, 1, shape).astype("float32")
