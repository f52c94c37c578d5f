"""Updates the loss-scale optimizer skipped: under ``mixed_float16`` Keras wraps the optimizer
in a ``LossScaleOptimizer``, which skips the update of any step whose gradients overflowed and
halves the scale. Such a step does less work than a real one; a row says how many it timed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from castbench.timing.measurement import StepSamples

if TYPE_CHECKING:
    import keras


class LossScaleSkips:
    """Reads the inner optimizer's update count before the steps run; ``count`` compares it
    with the training steps run since. None where no loss scaling is in play."""

    def __init__(self, model: keras.Model | None, config: Any) -> None:
        optimizer = getattr(model, "optimizer", None)
        self.optimizer = optimizer if hasattr(optimizer, "inner_optimizer") else None
        if config.mode != "train":
            self.optimizer = None
        self.before = self._applied() if self.optimizer is not None else 0

    def _applied(self) -> int:
        import keras  # only where a model has a loss-scale optimizer: Keras is loaded

        # the wrapper's iterations are its inner optimizer's: they count applied updates only
        return int(keras.ops.convert_to_numpy(self.optimizer.iterations))

    def count(self, samples: dict[str, StepSamples]) -> int | None:
        """Steps run through the model less updates applied (call after every kind finished,
        so that state held on the side is back in the model)."""
        if self.optimizer is None:
            return None
        ran = sum(s.steps_run for s in samples.values())
        return ran - (self._applied() - self.before)
