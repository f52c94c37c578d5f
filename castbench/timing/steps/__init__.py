"""The two steps castbench times for every configuration, one compile shared between them.

- ``compiled``: the backbone's train or infer step as a training loop runs it. The model's
  state stays on the device between steps and nothing is copied back per step; only the step's
  outputs (and, for training, its updated state) are waited for.
- ``api``: ``train_on_batch`` / ``predict_on_batch`` as a user calls them, per-call host work
  and all.

``framework_overhead_ms`` in a row is the difference of their medians. How the compiled step is
held differs per backend (:mod:`.jax_steps`, :mod:`.trainer_steps`); the API step is the
same everywhere (:mod:`.api`).
"""

from __future__ import annotations

import keras

from castbench.timing.config import TimingConfig
from castbench.timing.steps.api import ApiStep
from castbench.timing.steps.base import STEP_KINDS, FixedBatch, Step

__all__ = ["STEP_KINDS", "FixedBatch", "Step", "make_steps"]


def make_steps(model: keras.Model, config: TimingConfig, batch: FixedBatch) -> dict[str, Step]:
    """The step kinds ``config`` asks for, of ``model`` on ``batch``, in the order they are
    measured (the primary kind first: it owns the one compile)."""
    steps: dict[str, Step] = {}
    for kind in config.step_kinds:
        step = _compiled_step(model, config, batch) if kind == "compiled" else None
        if step is not None:
            steps[kind] = step
        elif kind == "api" or not steps:  # without a compiled step, the API step is the row's
            steps["api"] = ApiStep(model, config.mode, batch)
    return steps


def _compiled_step(model: keras.Model, config: TimingConfig, batch: FixedBatch) -> Step | None:
    """The backend's compiled step; None where castbench holds none for the backend (the row
    then times, and says it timed, the API step)."""
    backend = keras.backend.backend()
    if backend == "jax":
        from castbench.timing.steps.jax_steps import JaxCompiledStep

        return JaxCompiledStep(model, config.mode, batch)
    if backend in ("tensorflow", "torch"):
        from castbench.timing.steps.trainer_steps import TrainerFunctionStep

        return TrainerFunctionStep(model, config.mode, batch)
    return None
