"""The API step: ``train_on_batch`` / ``predict_on_batch``, as a user calls them."""

from __future__ import annotations

import keras

from castbench.timing.steps.base import CompileReport, FixedBatch


class ApiStep:
    """Keras's per-call entry points. Under JAX each call also copies the whole state back into
    the model's variables; that host work is part of what this kind measures."""

    kind = "api"

    def __init__(self, model: keras.Model, mode: str, batch: FixedBatch):
        self.model = model
        self.batch = batch
        self._call = self._train if mode == "train" else self._infer

    def __call__(self) -> None:
        self._call()

    def _train(self) -> None:
        self.model.train_on_batch(self.batch.images, self.batch.labels)  # returns host floats
        if keras.backend.backend() == "jax":  # the optimizer update is dispatched after the loss
            import jax

            jax.block_until_ready([v.value for v in self.model.trainable_variables])

    def _infer(self) -> None:
        self.model.predict_on_batch(self.batch.images)  # returns a host array

    def compile(self) -> CompileReport | None:
        return None

    def finish(self) -> None:
        return None
