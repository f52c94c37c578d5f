"""Measure one configuration: warm-up (the first step's extra time is the compile time), then
timed steps with a clock that waits for the device.

The CLI's sweep and the pytest-benchmark suite both drive :class:`StepRunner`, so both time
exactly the same step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from castbench.errors import classify_failure  # noqa: F401  (imported from here too)
from castbench.models import build_model, compile_for_training
from castbench.spec import ModelSpec
from castbench.timing.config import TimingConfig, steps_per_epoch
from castbench.timing.epoch import measure_epoch
from castbench.timing.probes import ResourceMonitor
from castbench.timing.stats import summarize

clock = time.perf_counter
# The counted FLOPs are for the forward pass; a training step's backward pass costs about twice
# the forward (gradients for activations and for weights), so a step is ~3x forward.
TRAIN_FLOPS_PER_FORWARD = 3.0


def build_for_timing(config: TimingConfig) -> keras.Model:
    """Build and compile the model ``config`` names, under its precision policy (and inside
    its ``tf.distribute`` strategy's scope, for a strategy other than ``default``)."""
    scope = contextlib.nullcontext()
    if config.strategy != "default":
        from castbench.timing.distributed.strategy import strategy_for

        scope = strategy_for(config).scope()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with scope:
            model = build_model(
                ModelSpec(
                    config.backbone,
                    config.input_size,
                    head=config.head,
                    weights=config.weights,
                    trainable=config.trainable,
                )  # fmt: skip
            )
            jit: bool | str = "auto" if config.jit_compile is None else config.jit_compile
            return compile_for_training(model, jit_compile=jit)
    finally:
        keras.config.set_dtype_policy(previous)


class StepRunner:
    """One synchronous training or inference step of ``model`` on a fixed random batch.

    The batch is made once and placed on the device, so a step times the model alone, not an
    input pipeline. ``train_on_batch`` and ``predict_on_batch`` hand back host values (loss,
    predictions) that depend on the whole step, so a step returns only after the device has
    finished it: that readback is the synchronisation point on every backend. Under JAX the
    optimizer's update is dispatched asynchronously after the loss is ready, so a training step
    also waits for the updated weights.

    Under a ``tf.distribute`` strategy each replica gets its own ``batch_size`` slice (see
    :mod:`castbench.timing.distributed`); ``global_batch`` is what one step processes.
    """

    def __init__(self, model: keras.Model, config: TimingConfig, seed: int = 0) -> None:
        self.model = model
        self.config = config
        self.replicas = 1
        self.global_batch = config.batch_size
        if config.strategy != "default":
            from castbench.timing.distributed.step import distributed_step

            self.step, self.replicas = distributed_step(model, config, seed)
            self.global_batch = config.batch_size * self.replicas
            return
        rng = np.random.default_rng(seed)
        shape = (config.batch_size, config.input_size, config.input_size, 3)
        self.images = keras.ops.convert_to_tensor(rng.uniform(-1, 1, shape).astype("float32"))
        labels = rng.integers(0, 2, (config.batch_size, 1)).astype("float32")
        self.labels = keras.ops.convert_to_tensor(labels)
        self.step: Callable[[], Any] = self._train if config.mode == "train" else self._infer

    def _train(self) -> float:
        loss = self.model.train_on_batch(self.images, self.labels)
        if keras.backend.backend() == "jax":
            import jax

            jax.block_until_ready([v.value for v in self.model.trainable_variables])
        return loss

    def _infer(self) -> np.ndarray:
        return self.model.predict_on_batch(self.images)

    def timed_steps(self, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            start = clock()
            self.step()
            samples.append(clock() - start)
        return samples


def measure(runner: StepRunner, gflops_per_image: float | None = None) -> dict[str, Any]:
    """Warm up and time ``runner``; returns the measured fields of a results row."""
    config = runner.config
    with ResourceMonitor() as monitor:
        warmup = runner.timed_steps(config.warmup)
        samples = runner.timed_steps(config.steps)
    stats = summarize(samples)
    median = stats["step_s_median"]
    global_batch = getattr(runner, "global_batch", config.batch_size)
    epoch_steps = steps_per_epoch(config.n_train, global_batch)  # at the global batch
    fields: dict[str, Any] = {
        **stats,
        "first_step_s": warmup[0],
        # the first step traces and compiles; what it took beyond a steady step is compile time
        "compile_s": max(warmup[0] - median, 0.0),
        "warmup_s": warmup,
        "samples_s": samples,
        "images_per_s": global_batch / median,
        "steps_per_epoch": epoch_steps,
        "epoch_s": epoch_steps * median,
        # what Keras resolved "auto" to (and whether it honoured True), not what was asked
        "jit_compile": bool(getattr(runner.model, "jit_compile", False)),
        "strategy": config.strategy,
        "replicas": getattr(runner, "replicas", 1),
        "per_replica_batch": config.batch_size,
        "global_batch": global_batch,
        **monitor.result(),
    }
    if config.profile:  # after the timed steps, so tracing does not distort them
        from castbench.timing.profiling import capture

        fields["profile_dir"] = capture(runner, config.profile)
    if config.epoch_data and config.mode == "train":
        fields.update(measure_epoch(runner.model, config))
    if gflops_per_image:
        factor = TRAIN_FLOPS_PER_FORWARD if config.mode == "train" else 1.0
        fields["achieved_gflops_per_s"] = gflops_per_image * factor * global_batch / median
    return fields
