"""What one configuration's measurement holds, and every figure derived from it.

The engine fills a :class:`Measurement`; statistics, rates, epoch figures, FLOP/s, the share
of the device's peak and energy per image are its properties, so the CLI sweep, the pytest
plugin and reports all derive them the same way. Rows are made from it in
:func:`castbench.results.measured_row`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from castbench.timing.config import TimingConfig, steps_per_epoch
from castbench.timing.stats import summarize

# The counted FLOPs are for the forward pass; a training step's backward pass costs about twice
# the forward (gradients for activations and for weights), so a step is ~3x forward.
TRAIN_FLOPS_PER_FORWARD = 3.0
# Pipelined throughput: PIPELINE_ROUNDS rounds of steps dispatched back to back, one wait each,
# paired with as many slices of the timed steps in the order AB BA AB BA (four pairs is the
# fewest for which linear drift leaves both the mean and the median of each side in place).
PIPELINE_ROUNDS = 4


def pipeline_depth(steps: int) -> int:
    """Steps per pipelined round: the timed steps shared out over the rounds, at least two (one
    step alone has nothing to overlap with)."""
    return max(2, steps // PIPELINE_ROUNDS)


@dataclass(frozen=True)
class StepSamples:
    """Warm-up and timed samples of one step kind, in seconds."""

    kind: str
    warmup_s: tuple[float, ...]
    samples_s: tuple[float, ...]
    pipelined_s: tuple[float, ...] = ()  # seconds per round of steps dispatched back to back

    @property
    def stats(self) -> dict[str, float]:
        return summarize(self.samples_s)

    @property
    def median(self) -> float:
        return self.stats["step_s_median"]

    @property
    def first_s(self) -> float:
        return self.warmup_s[0]

    @property
    def pipeline_depth(self) -> int | None:
        """Steps per pipelined round (the engine's rule for this many timed steps)."""
        return pipeline_depth(len(self.samples_s)) if self.pipelined_s else None

    @property
    def steps_run(self) -> int:
        return (
            len(self.warmup_s)
            + len(self.samples_s)
            + len(self.pipelined_s) * (self.pipeline_depth or 0)
        )

    def as_json(self) -> dict[str, list[float]]:
        payload = {"warmup_s": list(self.warmup_s), "samples_s": list(self.samples_s)}
        if self.pipelined_s:
            payload["pipelined_s"] = list(self.pipelined_s)
        return payload


@dataclass(frozen=True)
class CompileTime:
    """The one compile a configuration's steps share.

    ``cold_s`` is what compiling took from nothing; on a persistent-cache hit it is the time
    the cache recorded when the entry was made, and ``load_s`` is this run's load time.
    """

    cold_s: float | None
    load_s: float | None = None
    cache_hit: bool | None = None  # None: no persistent cache in use


@dataclass(frozen=True)
class Measurement:
    config: TimingConfig
    steps: dict[str, StepSamples]
    compile: CompileTime
    probes: dict[str, Any] = field(default_factory=dict)  # ResourceMonitor.result()
    step_memory_bytes: int | None = None
    step_memory_source: str | None = None  # where the figure comes from (xla, tensorflow)
    global_batch: int | None = None
    replicas: int = 1
    jit_resolved: bool | None = None  # what Keras resolved jit_compile to
    gflops_per_image: float | None = None
    device_peak_gflops: float | None = None  # the device's measured peak at this precision
    recompiles: int | None = None  # traces/compiles while timed (None: the backend cannot tell)
    extra: dict[str, Any] = field(default_factory=dict)  # epoch and profile fields

    @property
    def primary(self) -> StepSamples:
        """The step kind the row's step statistics describe (``config.step``), or the only one
        measured."""
        return self.steps.get(self.config.step) or next(iter(self.steps.values()))

    @property
    def batch(self) -> int:
        return self.global_batch or self.config.batch_size

    @property
    def images_per_s(self) -> float:
        return self.batch / self.primary.median

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.config.n_train, self.batch)

    @property
    def epoch_s(self) -> float:
        return self.steps_per_epoch * self.primary.median

    @property
    def compile_s(self) -> float | None:
        """Cold compile time: the explicit compile where there was one, else what the first
        step took beyond a steady one."""
        if self.compile.cold_s is not None or self.compile.cache_hit:
            return self.compile.cold_s
        first = self.primary.first_s
        return max(first - self.primary.median, 0.0)

    @property
    def framework_overhead_ms(self) -> float | None:
        """API step median less compiled step median: Keras's per-call host work."""
        if "compiled" not in self.steps or "api" not in self.steps:
            return None
        return (self.steps["api"].median - self.steps["compiled"].median) * 1e3

    @property
    def achieved_gflops_per_s(self) -> float | None:
        if not self.gflops_per_image:
            return None
        factor = TRAIN_FLOPS_PER_FORWARD if self.config.mode == "train" else 1.0
        return self.gflops_per_image * factor * self.batch / self.primary.median

    @property
    def pct_of_peak(self) -> float | None:
        achieved = self.achieved_gflops_per_s
        if achieved is None or not self.device_peak_gflops:
            return None
        return 100.0 * achieved / self.device_peak_gflops

    @property
    def pipelined_images_per_s(self) -> tuple[float | None, float | None]:
        """Images per second over the pipelined rounds: (median, sample sd across rounds)."""
        primary = self.primary
        if not primary.pipelined_s:
            return None, None
        depth = primary.pipeline_depth or 0
        rates = [self.batch * depth / seconds for seconds in primary.pipelined_s]
        spread = statistics.stdev(rates) if len(rates) > 1 else 0.0
        return statistics.median(rates), spread
