"""A serving runtime's inference step in the shape the timing engine measures: a runner with
``.config``, ``.steps`` (one kind, named after the runtime), ``.step`` and ``.timed_steps(n)``.
The step runs one synchronous batch and returns with the output on the host."""

from __future__ import annotations

import numpy as np

from castbench.serving.sessions import Session
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner


def fixed_batch(config: TimingConfig, seed: int = 0) -> np.ndarray:
    """The batch every runtime of a configuration sees: the same draw as the Keras step's."""
    rng = np.random.default_rng(seed)
    shape = (config.batch_size, config.input_size, config.input_size, 3)
    return rng.uniform(-1, 1, shape).astype("float32")


class RuntimeStep:
    """``session.run`` on one fixed batch: nothing to compile ahead (the session was made and
    optimised before the gate, as ``export_s``) and no state to hand back."""

    def __init__(self, session: Session, kind: str, images: np.ndarray) -> None:
        self.session = session
        self.kind = kind
        self.images = images

    def __call__(self) -> np.ndarray:
        return self.session.run(self.images)

    def compile(self) -> None:
        return None

    def finish(self) -> None:
        return None


class RuntimeRunner:
    """Times a runtime's step. ``model`` is None: no Keras model runs here."""

    model = None
    replicas = 1

    def __init__(self, session: Session, config: TimingConfig, images: np.ndarray) -> None:
        self.config = config
        self.global_batch = config.batch_size
        self.kind = config.runtime
        self.step = RuntimeStep(session, config.runtime, images)
        self.steps = {self.kind: self.step}

    # the engine's own loop and hand-back: Keras and runtime steps meet the same clock
    timed_steps = StepRunner.timed_steps
    finish = StepRunner.finish
