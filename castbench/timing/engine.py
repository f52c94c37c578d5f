"""Measure one configuration: one compile, then warm-up and timed steps of each step kind
(compiled, API) with a clock that waits for the device.

The CLI's sweep and the pytest-benchmark suite both drive :class:`StepRunner`, so both time
exactly the same step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from castbench.errors import classify_failure  # noqa: F401  (imported from here too)
from castbench.models import BUILD_SEED, build_model, compile_for_training
from castbench.spec import ModelSpec
from castbench.timing import compile_cache
from castbench.timing.config import TimingConfig
from castbench.timing.epoch import measure_epoch
from castbench.timing.measurement import CompileTime, Measurement, StepSamples
from castbench.timing.probes import DeviceMemory, ResourceMonitor
from castbench.timing.steps import FixedBatch, make_steps

clock = time.perf_counter


def build_for_timing(config: TimingConfig) -> keras.Model:
    """Build and compile the model ``config`` names, under its precision policy (and inside
    its ``tf.distribute`` strategy's scope, for a strategy other than ``default``)."""
    if keras.backend.backend() == "jax":  # compiled executables outlive the process
        compile_cache.enable(compile_cache.requested_cache_dir())
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

    ``steps`` holds the compiled and the API step (:mod:`castbench.timing.steps`), in the order
    they are measured; ``step`` is the one ``config.step`` names, which pytest-benchmark and
    profiling time. Every step returns only after the device has finished it.

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
            self.steps: dict[str, Any] = {"compiled": _PlainStep(step)}
        else:
            self.batch = FixedBatch.random(config, seed)
            self.steps = make_steps(model, config, self.batch)
        self.kind = config.step if config.step in self.steps else next(iter(self.steps))
        self.step: Callable[[], Any] = self.steps[self.kind]

    def finish(self) -> None:
        """Hand any state the steps hold back to the model, so that it (and the next runner
        on it) sees the trained weights."""
        for step in self.steps.values():
            step.finish()

    def timed_steps(self, count: int, kind: str | None = None) -> list[float]:
        step = self.steps[kind] if kind else self.step
        samples = []
        for _ in range(count):
            start = clock()
            step()
            samples.append(clock() - start)
        return samples


class _PlainStep:
    """A step callable with nothing to compile ahead or hand back."""

    kind = "compiled"

    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function

    def __call__(self) -> None:
        self.function()

    def compile(self) -> None:
        return None

    def finish(self) -> None:
        return None


@dataclass(frozen=True)
class WarmUp:
    """A step kind made ready to time: its compile (the compiled kind owns the one compile)
    and its warm-up samples, the first of which runs the freshly compiled step."""

    samples: list[float]
    compile: CompileTime
    memory_bytes: int | None = None
    memory_source: str | None = None


def warm_up(runner: StepRunner, kind: str) -> WarmUp:
    compile_time, memory = CompileTime(None), (None, None)
    if kind == "compiled":
        compile_time, memory = _compile(runner.steps[kind])
    return WarmUp(runner.timed_steps(runner.config.warmup, kind), compile_time, *memory)


def measure(
    runner: StepRunner,
    gflops_per_image: float | None = None,
    device_peak_gflops: float | None = None,
) -> Measurement:
    """Compile once, then warm up and time each step kind in turn."""
    config = runner.config
    samples: dict[str, StepSamples] = {}
    compiled = WarmUp([], CompileTime(None))
    with ResourceMonitor() as monitor, DeviceMemory() as device_memory:
        for kind, step in runner.steps.items():
            ready = warm_up(runner, kind)
            if kind == "compiled":
                compiled = ready
            timed = runner.timed_steps(config.steps, kind)
            step.finish()  # the next kind starts from the model's state
            samples[kind] = StepSamples(kind, tuple(ready.samples), tuple(timed))
    memory = (compiled.memory_bytes, compiled.memory_source)
    if memory[0] is None:
        memory = (device_memory.peak_bytes, device_memory.source)
    extra: dict[str, Any] = {}
    if config.profile:  # after the timed steps, so tracing does not distort them
        from castbench.timing.profiling import capture

        extra["profile_dir"] = capture(runner, config.profile)
        runner.finish()
    if config.epoch_data and config.mode == "train":
        extra.update(measure_epoch(runner.model, config))
    return Measurement(
        config=config,
        steps=samples,
        compile=compiled.compile,
        probes=monitor.result(),
        step_memory_bytes=memory[0],
        step_memory_source=memory[1],
        global_batch=runner.global_batch,
        replicas=runner.replicas,
        jit_resolved=None if runner.model is None else bool(runner.model.jit_compile),
        gflops_per_image=gflops_per_image,
        device_peak_gflops=device_peak_gflops,
        extra=extra,
    )


def _compile(step: Any) -> tuple[CompileTime, tuple[int | None, str | None]]:
    """Compile ``step`` ahead of time where its backend allows; with the persistent cache's
    account of it where one is in use."""
    with compile_cache.watch() as cache:
        report = step.compile()
    if report is None:
        return CompileTime(None), (None, None)
    memory = (report.memory_bytes, "xla" if report.memory_bytes is not None else None)
    if not cache.used:
        return CompileTime(report.seconds), memory
    if cache.hit:
        return CompileTime(cache.cold_s, load_s=report.seconds, cache_hit=True), memory
    return CompileTime(report.seconds, cache_hit=False), memory
