"""Measure one configuration: one compile, then warm-up and timed steps of each step kind
asked for (compiled, API) with a clock that waits for the device, then pipelined rounds.

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
from castbench.timing import compile_cache, xla_options
from castbench.timing.config import TimingConfig
from castbench.timing.epoch import measure_epoch
from castbench.timing.loss_scale import LossScaleSkips
from castbench.timing.measurement import (
    PIPELINE_ROUNDS,
    CompileTime,
    Measurement,
    StepSamples,
    pipeline_depth,
)
from castbench.timing.probes import DeviceMemory, ResourceMonitor
from castbench.timing.recompile import CompileCounter
from castbench.timing.steps import FixedBatch, make_steps

clock = time.perf_counter


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
            self.steps: dict[str, Any] = {"compiled": _PlainStep(step)}
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

    def timed_steps(self, count: int, kind: str | None = None) -> list[float]:
        return timed_steps(self.steps[kind] if kind else self.step, count)


def timed_steps(step: Callable[[], Any], count: int, min_seconds: float = 0.0) -> list[float]:
    """``count`` synchronous steps, one clock reading each; more while ``min_seconds`` have not
    passed (a probe that averages over its own windows needs the phase to last)."""
    samples: list[float] = []
    began = clock()
    while len(samples) < count or clock() - began < min_seconds:
        start = clock()
        step()
        samples.append(clock() - start)
    return samples


def pipelined_rounds(step: Any, depth: int, rounds: int = PIPELINE_ROUNDS) -> list[float]:
    """Seconds per round of ``depth`` steps dispatched without waiting, then one wait for the
    last: as a training loop runs them, with the host queueing step k+1 while the device runs
    step k. A step that cannot be dispatched apart from its wait (one returning host values,
    like ``train_on_batch``) runs synchronously, and its pipelined figure equals its latency."""
    dispatch = getattr(step, "dispatch", None)
    wait = getattr(step, "wait", None)
    samples = []
    for _ in range(rounds):
        start = clock()
        if dispatch is None or wait is None:
            for _ in range(depth):
                step()
        else:
            handle = None
            for _ in range(depth):
                handle = dispatch()
            wait(handle)
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
    """A step kind made ready to time: its compile (the first kind measured owns the one
    compile) and its warm-up samples, the first of which runs the freshly compiled step."""

    samples: list[float]
    compile: CompileTime
    memory_bytes: int | None = None
    memory_source: str | None = None


def warm_up(runner: Any, kind: str) -> WarmUp:
    compile_time, memory = _compile(runner.steps[kind])
    return WarmUp(timed_steps(runner.steps[kind], runner.config.warmup), compile_time, *memory)


@dataclass(frozen=True)
class _Timed:
    """What the primary kind's timed phase measured besides its step times."""

    probes: dict[str, Any]
    recompiles: int | None
    pipelined_s: tuple[float, ...]
    device_memory: tuple[int | None, str | None]


def _time_primary(runner: Any, step: Any, count: int) -> tuple[list[float], _Timed]:
    """The row's own timed steps, with the probes and the recompile guard spanning them and
    nothing else; then the pipelined rounds (guarded, not probed)."""
    with CompileCounter(runner.model) as compiles:
        with ResourceMonitor() as monitor, DeviceMemory() as device_memory:
            samples = timed_steps(step, count, monitor.wants_window)
        pipelined = pipelined_rounds(step, pipeline_depth(count))
    probes = monitor.result()
    energy = monitor.energy_j()
    batch = getattr(runner, "global_batch", None) or runner.config.batch_size
    probes["energy_j_per_image"] = None if energy is None else energy / (batch * len(samples))
    memory = (device_memory.peak_bytes, device_memory.source)
    return samples, _Timed(probes, compiles.count, tuple(pipelined), memory)


def measure(
    runner: Any,
    gflops_per_image: float | None = None,
    device_peak_gflops: float | None = None,
) -> Measurement:
    """Warm up and time each step kind the runner holds, the primary kind first: it owns the
    one compile, and only its timed steps are probed and guarded against recompiles."""
    config = runner.config
    samples: dict[str, StepSamples] = {}
    first: WarmUp | None = None
    timed_extra = _Timed({}, None, (), (None, None))
    skips = LossScaleSkips(runner.model, config)
    for kind in [runner.kind, *(k for k in runner.steps if k != runner.kind)]:
        step = runner.steps[kind]
        ready = warm_up(runner, kind)
        first = first or ready
        if kind == runner.kind:
            timed, timed_extra = _time_primary(runner, step, config.steps)
        else:
            timed = timed_steps(step, config.steps)
        step.finish()  # the next kind starts from the model's state
        pipelined = timed_extra.pipelined_s if kind == runner.kind else ()
        samples[kind] = StepSamples(kind, tuple(ready.samples), tuple(timed), pipelined)
    assert first is not None
    memory = (first.memory_bytes, first.memory_source)
    if memory[0] is None:
        memory = timed_extra.device_memory
    extra: dict[str, Any] = {"loss_scale_skips": skips.count(samples)}
    if config.profile:  # after the timed steps, so tracing does not distort them
        from castbench.timing.profiling import capture

        extra["profile_dir"] = capture(runner, config.profile)
        runner.finish()
    if config.epoch_data and config.mode == "train":
        extra.update(measure_epoch(runner.model, config))
    return Measurement(
        config=config,
        steps=samples,
        compile=first.compile,
        probes=timed_extra.probes,
        step_memory_bytes=memory[0],
        step_memory_source=memory[1],
        global_batch=runner.global_batch,
        replicas=runner.replicas,
        jit_resolved=None if runner.model is None else bool(runner.model.jit_compile),
        gflops_per_image=gflops_per_image,
        device_peak_gflops=device_peak_gflops,
        recompiles=timed_extra.recompiles,
        extra=extra,
    )


def _compile(step: Any) -> tuple[CompileTime, tuple[int | None, str | None]]:
    """Compile ``step`` ahead of time where its backend allows; with the persistent cache's
    account of it where one is in use.

    ``compile_s`` is one quantity everywhere: what it takes to turn the step into an executable
    from nothing (trace, lower, backend compile). On a cache hit the backend compile is the
    time JAX stored with the entry, and this run's load time is kept apart."""
    with compile_cache.watch() as cache:
        report = step.compile()
    if report is None:
        return CompileTime(None), (None, None)
    memory = (report.memory_bytes, "xla" if report.memory_bytes is not None else None)
    if not cache.used:
        return CompileTime(report.seconds), memory
    if cache.hit:
        load_s = report.seconds - report.trace_s
        return CompileTime(report.trace_s + cache.cold_s, load_s=load_s, cache_hit=True), memory
    return CompileTime(report.seconds, cache_hit=False), memory
