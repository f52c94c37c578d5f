"""One synchronous distributed step.

Keras' ``train_on_batch`` under a strategy hands the *same* whole batch to every replica
(``strategy.run`` on a plain tensor), so it is not a distributed step: the step here builds one
per-replica batch on each replica's device (``distribute_values_from_function``) and calls the
model's own compiled ``train_step`` / ``predict_function`` on it, then reads the result back to
the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def distributed_step(model, config, seed: int = 0) -> tuple[Callable[[], Any], int]:
    """(one synchronous distributed step, replicas in sync) for a model built in a scope."""
    import tensorflow as tf

    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    shape = (config.batch_size, config.input_size, config.input_size, 3)

    def batch(ctx) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed + ctx.replica_id_in_sync_group)
        images = rng.uniform(-1, 1, shape).astype("float32")
        labels = rng.integers(0, 2, (config.batch_size, 1)).astype("float32")
        return images, labels

    # each replica's slice is made once, on that replica's device
    images = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(batch(ctx)[0])
    )
    labels = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(batch(ctx)[1])
    )

    if config.mode == "infer":
        model.make_predict_function()

        def infer() -> np.ndarray:
            return np.asarray(model.predict_function([(images,)]))

        return infer, replicas

    class _Context:
        replica_id_in_sync_group = 0

    local_images, local_labels = batch(_Context())
    builder = getattr(model, "_maybe_symbolic_build", None)
    if builder is not None:  # builds optimizer state in the scope, as train_on_batch does
        builder(data_batch=(local_images, local_labels, None))
    # Keras' own train_function reduces the logs with strategy.reduce("MEAN", axis=0), which
    # fails on scalar logs under MultiWorkerMirroredStrategy; this is the same step (Keras'
    # train_step on each replica, compiled as Keras compiles it) with the logs reduced whole.
    jit = bool(model.jit_compile)

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def one_step(images, labels):
        logs = strategy.run(model.train_step, args=((images, labels, None),))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    def train() -> dict[str, float]:
        model.reset_metrics()
        logs = one_step(images, labels)
        return {name: float(np.asarray(value)) for name, value in logs.items()}

    return train, replicas
