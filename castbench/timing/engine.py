"""Keras's side of the engine: build a configuration's model, and hold its step kinds
(compiled, API) on a fixed batch as a :class:`~castbench.timing.timer.Runner`.

The CLI's sweep and the pytest-benchmark suite both drive :class:`StepRunner` through
:func:`castbench.timing.timer.measure`, so both time exactly the same step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras

from castbench.models import BUILD_SEED, build_model, compile_for_training
from castbench.spec import ModelSpec
from castbench.timing import compile_cache, xla_options
from castbench.timing.config import TimingConfig
from castbench.timing.steps import FixedBatch, make_steps
from castbench.timing.timer import PlainStep


def build_for_timing(config: TimingConfig) -> keras.Model:
    """Build and compile the model ``config`` names, under its precision policy (and inside
    its ``tf.distribute`` strategy's scope, for a strategy other than ``default``)."""
    if keras.backend.backend() == "jax":  # compiled executables outlive the process
        compile_cache.enable(compile_cache.requested_cache_dir())
        xla_options.apply_matmul_precision()
    scope = contextlib.nullcontext()
    if config.strategy != "default":
        from castbench.timing.distributed.strategy import strategy_for

        scope = strategy_for(config).scope()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.model_precision)
    try:
        with scope:
            model = build_model(
                ModelSpec(
                    config.backbone,
                    config.input_size,
                    head=config.head,
                    weights=config.weights,
                    trainable=config.trainable,
                ),  # fmt: skip
                seed=BUILD_SEED,
            )
            jit: bool | str = "auto" if config.jit_compile is None else config.jit_compile
            return compile_for_training(model, jit_compile=jit)
    finally:
        keras.config.set_dtype_policy(previous)


class StepRunner:
    """The steps of one configuration, on a fixed random batch already on the device.

    ``steps`` holds the step kinds ``config.step`` asks for (:mod:`castbench.timing.steps`), in
    the order they are measured, the primary kind first; ``step`` is the primary one, which the
    row describes and pytest-benchmark and profiling time. Every step returns only after the
    device has finished it.

    Under a ``tf.distribute`` strategy there is one step, the strategy's own, and each replica
    gets its own ``batch_size`` slice (see :mod:`castbench.timing.distributed`);
    ``global_batch`` is what one step processes.
    """

    def __init__(self, model: keras.Model, config: TimingConfig, seed: int = 0) -> None:
        self.model = model
        self.config = config
        self.replicas = 1
        self.global_batch = config.batch_size
        if config.strategy != "default":
            from castbench.timing.distributed.step import distributed_step

            step, self.replicas = distributed_step(model, config, seed)
            self.global_batch = config.batch_size * self.replicas
            self.steps: dict[str, Any] = {"compiled": PlainStep(step)}
        else:
            self.batch = FixedBatch.random(config, seed)
            self.steps = make_steps(model, config, self.batch)
        primary = config.primary_step
        self.kind = primary if primary in self.steps else next(iter(self.steps))
        self.step: Callable[[], Any] = self.steps[self.kind]

    def finish(self) -> None:
        """Hand any state the steps hold back to the model, so that it (and the next runner
        on it) sees the trained weights."""
        for step in self.steps.values():
            step.finish()
