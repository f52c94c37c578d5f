"""The engine's framework-free core: one compile, then warm-up and timed steps of each step
kind a runner holds, with a clock that waits for the device, the primary kind's slices of timed
steps paired with pipelined rounds; probes span those timed steps and nothing else, the
recompile guard the pipelined rounds too.

Every runner castbench times implements :class:`Runner`: Keras steps
(:class:`castbench.timing.engine.StepRunner`, under each backend and ``tf.distribute``),
serving runtimes (:class:`castbench.serving.runner.RuntimeRunner`) and the PyTorch peer
(:class:`castbench.peer.sweep.PeerStepRunner`). Nothing here imports a framework, so the peer
measures without Keras loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from castbench.timing import compile_cache
from castbench.timing.config import TimingConfig
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

if TYPE_CHECKING:
    from castbench.timing.steps.base import Step

clock = time.perf_counter


class Runner(Protocol):
    """A configuration's steps on one device, ready to measure."""

    config: TimingConfig
    kind: str  # the primary step kind: the one the row describes, measured first
    steps: dict[str, Step]  # every kind to time, the primary among them
    model: Any  # the Keras model the steps run (None for a serving runtime or the peer)
    global_batch: int  # images one step processes (over every replica)
    replicas: int

    def finish(self) -> None:
        """Hand state the steps hold on the side back to the model (after the timed steps)."""
        ...


class PlainStep:
    """A step that is a plain callable, with nothing to compile ahead or hand back. Given
    ``dispatch`` (queue the step, return a handle) and ``wait`` (return once the device has
    finished it), its pipelined rounds queue steps back to back; without them they run it
    synchronously."""

    kind = "compiled"

    def __init__(self, function: Callable[[], Any], dispatch: Callable[[], Any] | None = None,
                 wait: Callable[[Any], None] | None = None) -> None:  # fmt: skip
        self.function = function
        self.dispatch = dispatch
        self.wait = wait

    def __call__(self) -> None:
        self.function()

    def compile(self) -> None:
        return None

    def finish(self) -> None:
        return None


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


@dataclass(frozen=True)
class WarmUp:
    """A step kind made ready to time: its compile (the first kind measured owns the one
    compile) and its warm-up samples, the first of which runs the freshly compiled step."""

    samples: list[float]
    compile: CompileTime
    memory_bytes: int | None = None
    memory_source: str | None = None


def warm_up(runner: Runner, kind: str) -> WarmUp:
    compile_time, memory = _compile(runner.steps[kind])
    return WarmUp(timed_steps(runner.steps[kind], runner.config.warmup), compile_time, *memory)


@dataclass(frozen=True)
class _Timed:
    """What the primary kind's timed phase measured besides its step times."""

    probes: dict[str, Any]
    recompiles: int | None
    pipelined_s: tuple[float, ...]
    device_memory: tuple[int | None, str | None]


class PrimaryPhase:
    """The row's own timed steps and pipelined rounds, run in one go or in slices (when
    runners are interleaved): the probes span each slice of timed steps and nothing else, the
    recompile guard spans the pipelined rounds too, and both add up over the slices."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.step = runner.steps[runner.kind]
        self.samples: list[float] = []
        self.pipelined: list[float] = []
        self._compiles = CompileCounter(runner.model)
        self._monitor = ResourceMonitor()
        self._memory = DeviceMemory()

    def time(self, count: int, slices: int = 1) -> None:
        """``count`` timed steps, one of ``slices`` that share the probes' minimum window."""
        with self._compiles, self._monitor, self._memory:
            window_s = self._monitor.wants_window / slices
            self.samples += timed_steps(self.step, count, window_s)

    def pipeline(self) -> None:
        """One pipelined round, as deep as the engine's rule for the timed steps."""
        with self._compiles:
            depth = pipeline_depth(self.runner.config.steps)
            self.pipelined += pipelined_rounds(self.step, depth, rounds=1)

    def time_and_pipeline(self, steps: int) -> None:
        """The timed steps in ``PIPELINE_ROUNDS`` slices, each paired with one pipelined round,
        the pairs in the order AB BA AB BA...: drift over the phase (a busy host, clocks settling)
        then moves latency and throughput alike, and their ratio is the pipelining's own."""
        shares = [steps // PIPELINE_ROUNDS + (index < steps % PIPELINE_ROUNDS)
                  for index in range(PIPELINE_ROUNDS)]  # fmt: skip
        slices = sum(1 for count in shares if count)
        for index, count in enumerate(shares):
            timed_first = index % 2 == 0  # A B, B A, A B, ...
            if timed_first and count:
                self.time(count, slices)
            self.pipeline()
            if not timed_first and count:
                self.time(count, slices)

    def result(self) -> _Timed:
        probes = self._monitor.result()
        energy = self._monitor.energy_j()
        images = self.runner.global_batch * len(self.samples)
        probes["energy_j_per_image"] = None if energy is None else energy / images
        memory = (self._memory.peak_bytes, self._memory.source)
        return _Timed(probes, self._compiles.count, tuple(self.pipelined), memory)


def measure(
    runner: Runner,
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
            phase = PrimaryPhase(runner)
            phase.time_and_pipeline(config.steps)
            timed, timed_extra = phase.samples, phase.result()
        else:
            timed = timed_steps(step, config.steps)
        step.finish()  # the next kind starts from the model's state
        pipelined = timed_extra.pipelined_s if kind == runner.kind else ()
        samples[kind] = StepSamples(kind, tuple(ready.samples), tuple(timed), pipelined)
    assert first is not None
    extra: dict[str, Any] = {"loss_scale_skips": skips.count(samples)}
    if config.profile:  # after the timed steps, so tracing does not distort them
        from castbench.timing.profiling import capture

        extra["profile_dir"] = capture(runner, config.profile)
        runner.finish()
    if config.epoch_data and config.mode == "train":
        from castbench.timing.epoch import measure_epoch

        extra.update(measure_epoch(runner.model, config))
    return _measurement(runner, samples, first, timed_extra, extra, gflops_per_image,
                        device_peak_gflops)  # fmt: skip


# Timed steps per slice when runners are interleaved: small enough that drift over a row's
# timed phase hits every runner alike, large enough that a slice is more than one step.
INTERLEAVED_SLICE = 5


def measure_interleaved(runners: list[Runner], gflops_per_image: float | None = None
                        ) -> list[Measurement]:  # fmt: skip
    """Runners of one step kind each (serving runtimes of one backbone and batch size), timed
    round robin: each warms up, then every round times a slice of each runner's steps, the
    runner that goes first rotating from round to round; then their pipelined rounds, one
    each in turn. Each runner's probes span its own slices only."""
    for runner in runners:
        if len(runner.steps) != 1 or runner.model is not None:
            raise ValueError("only single-kind runners without a Keras model are interleaved")
    ready = [warm_up(runner, runner.kind) for runner in runners]
    phases = [PrimaryPhase(runner) for runner in runners]
    steps = runners[0].config.steps
    slices = [min(INTERLEAVED_SLICE, steps - done) for done in range(0, steps, INTERLEAVED_SLICE)]
    for round_index, count in enumerate(slices):
        for phase in _rotated(phases, round_index):
            phase.time(count, len(slices))
    for round_index in range(PIPELINE_ROUNDS):
        for phase in _rotated(phases, round_index):
            phase.pipeline()
    measurements = []
    for runner, warm, phase in zip(runners, ready, phases, strict=True):
        timed = phase.result()
        samples = {runner.kind: StepSamples(runner.kind, tuple(warm.samples),
                                            tuple(phase.samples), timed.pipelined_s)}  # fmt: skip
        measurements.append(_measurement(runner, samples, warm, timed, {}, gflops_per_image))
    return measurements


def _rotated(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


def _measurement(
    runner: Runner,
    samples: dict[str, StepSamples],
    first: WarmUp,
    timed: _Timed,
    extra: dict[str, Any],
    gflops_per_image: float | None,
    device_peak_gflops: float | None = None,
) -> Measurement:
    memory = (first.memory_bytes, first.memory_source)
    if memory[0] is None:
        memory = timed.device_memory
    return Measurement(
        config=runner.config,
        steps=samples,
        compile=first.compile,
        probes=timed.probes,
        step_memory_bytes=memory[0],
        step_memory_source=memory[1],
        global_batch=runner.global_batch,
        replicas=runner.replicas,
        jit_resolved=None if runner.model is None else bool(runner.model.jit_compile),
        gflops_per_image=gflops_per_image,
        device_peak_gflops=device_peak_gflops,
        recompiles=timed.recompiles,
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
