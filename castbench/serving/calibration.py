"""Calibration images for post-training quantization: a seeded draw from a casting-layout data
set's training split (less its validation split, as training holds it out), decoded at the
model's input size and preprocessed as the backbone's training input is. Never test images:
calibrating on them would leak the test split into the quantized model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from castbench import backbones
from castbench.errors import UsageError

SEED = 0


def calibration_label(data: str, count: int) -> str:
    """What an int8 artifact's record says it was calibrated on."""
    return f"{Path(data).resolve()} train split: {count} images, seed {SEED}"


def calibration_images(data: str, backbone: str, size: int, count: int) -> np.ndarray:
    """``count`` training images of ``data`` (fewer if it has fewer), float32 [N, size, size, 3]
    after the backbone's ``preprocess_input``."""
    from castbench.data.loader import decode_rgb
    from castbench.timing.epoch import training_split

    samples = training_split(data)
    if not samples:
        raise UsageError(f"{data} has no training images to calibrate on")
    picked = np.random.default_rng(SEED).permutation(len(samples))[:count]
    images = np.stack([decode_rgb(samples[i].path, size) for i in sorted(picked)])
    preprocess = backbones.get(backbone).preprocess_fn()
    return np.asarray(preprocess(images.astype("float32")), dtype="float32")
