"""A serving runtime's inference step in the shape the timing engine measures: ``.config``,
``.step`` (one synchronous batch, output on the host) and ``.timed_steps(n)``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from castbench.serving.sessions import Session
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner


def fixed_batch(config: TimingConfig, seed: int = 0) -> np.ndarray:
    """The batch every runtime of a configuration sees: the same draw as the Keras step's."""
    rng = np.random.default_rng(seed)
    shape = (config.batch_size, config.input_size, config.input_size, 3)
    return rng.uniform(-1, 1, shape).astype("float32")


class RuntimeRunner:
    """Times ``session.run`` on one fixed batch. ``model`` is None: no Keras model runs here."""

    model = None

    def __init__(self, session: Session, config: TimingConfig, images: np.ndarray) -> None:
        self.config = config
        self.session = session
        self.images = images
        self.step: Callable[[], np.ndarray] = self._infer

    def _infer(self) -> np.ndarray:
        return self.session.run(self.images)

    # the engine's own loop over ``self.step``: Keras and runtime steps meet the same clock
    timed_steps = StepRunner.timed_steps
