"""A serving runtime's inference step as the timing engine measures it: a
:class:`~castbench.timing.timer.Runner` with one step kind, named after the runtime. The step
runs one synchronous batch and returns with the output on the host."""

from __future__ import annotations

import numpy as np

from castbench.serving.sessions import Session
from castbench.timing.config import TimingConfig


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

    def finish(self) -> None:
        return None  # a session holds no state to hand back
