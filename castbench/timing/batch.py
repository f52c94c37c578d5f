"""The one random batch every timed step of a configuration sees, drawn in one place: Keras's
steps (as device tensors), the serving runtimes (the images) and the PyTorch peer (the images
transposed to channels-first)."""

from __future__ import annotations

import numpy as np

from castbench.timing.config import TimingConfig


def random_batch(config: TimingConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): ``batch_size`` images of ``input_size`` pixels, channels last,
    uniform in [-1, 1] as the backbones' preprocessing leaves them; labels 0 or 1, shape
    (batch, 1); float32."""
    rng = np.random.default_rng(seed)
    shape = (config.batch_size, config.input_size, config.input_size, 3)
    images = rng.uniform(-1, 1, shape).astype("float32")
    labels = rng.integers(0, 2, (config.batch_size, 1)).astype("float32")
    return images, labels
