"""The correctness gate: a runtime is timed only when its outputs on the fixed batch match
Keras's. The tolerance is for float32 artifacts of the same weights; a converter that changed
what the model computes shows up as a larger difference."""

from __future__ import annotations

import numpy as np

FLOAT32_TOLERANCE = 1e-4


def max_abs_diff(outputs: np.ndarray, reference: np.ndarray) -> float:
    outputs = np.asarray(outputs, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if outputs.shape != reference.shape:
        raise ValueError(f"runtime output shape {outputs.shape} is not Keras's {reference.shape}")
    return float(np.max(np.abs(outputs - reference)))


def passes(diff: float, tolerance: float = FLOAT32_TOLERANCE) -> bool:
    return bool(np.isfinite(diff)) and diff <= tolerance
