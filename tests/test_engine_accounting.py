"""The engine's clock and bookkeeping against a step whose costs are known: a simulated device
that runs queued work one item at a time (as a GPU stream does) behind a host that spends its
own time queueing it. A missed wait, a warm-up counted as a timed step, probes that span the
compile, or pipelining that does not pipeline each move a figure out of its range here."""

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from castbench.timing import timer
from castbench.timing.config import TimingConfig
from castbench.timing.measurement import PIPELINE_ROUNDS, pipeline_depth
from castbench.timing.timer import measure

HOST_S = 0.004  # host work to queue one step
DEVICE_S = 0.012  # device work of one step
COMPILE_S = 0.4  # the first call's extra cost


class SimulatedStep:
    """Queues ``DEVICE_S`` of work on a one-worker device per call; the first call also
    'compiles'. Counts every call so tests can check what the engine ran."""

    kind = "compiled"

    def __init__(self) -> None:
        self.device = ThreadPoolExecutor(max_workers=1)
        self.calls = 0
        self.lock = threading.Lock()

    def dispatch(self) -> Future:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        time.sleep(HOST_S + (COMPILE_S if first else 0.0))
        return self.device.submit(time.sleep, DEVICE_S)

    def wait(self, handle: Future) -> None:
        handle.result()

    def __call__(self) -> None:
        self.wait(self.dispatch())

    def compile(self) -> None:
        return None

    def finish(self) -> None:
        return None


class SimulatedRunner:
    model = None
    replicas = 1

    def __init__(self, config: TimingConfig) -> None:
        self.config = config
        self.global_batch = config.batch_size
        self.kind = "compiled"
        self.step = SimulatedStep()
        self.steps = {"compiled": self.step}


@pytest.fixture(scope="module")
def measured():
    config = TimingConfig("mobilenetv2", 32, 4, mode="infer", steps=9, warmup=2)
    runner = SimulatedRunner(config)
    return runner, measure(runner)


def test_a_step_waits_for_the_device_and_warm_up_is_not_timed(measured):
    _, measurement = measured
    median = measurement.primary.median
    # host + device, never the host alone (a missed wait) nor the compile (a warm-up timed)
    assert HOST_S + DEVICE_S <= median < HOST_S + DEVICE_S + 0.02
    assert len(measurement.primary.samples_s) == 9 and len(measurement.primary.warmup_s) == 2
    assert measurement.compile_s == pytest.approx(COMPILE_S, abs=0.05)


def test_probes_span_the_timed_steps_and_nothing_else(measured):
    _, measurement = measured
    timed = sum(measurement.primary.samples_s)
    window = measurement.probes["probe_window_s"]
    assert timed <= window < timed + 0.1
    assert window < COMPILE_S  # the compile and warm-up lie outside it


def test_pipelined_rounds_overlap_host_and_device(measured):
    runner, measurement = measured
    depth = pipeline_depth(9)
    assert measurement.primary.pipeline_depth == depth == 2
    assert len(measurement.primary.pipelined_s) == PIPELINE_ROUNDS
    # warm-up, timed and pipelined calls, each exactly once
    assert runner.step.calls == 2 + 9 + PIPELINE_ROUNDS * depth
    pipelined, spread = measurement.pipelined_images_per_s
    # a round costs one host queueing plus the device's serial work: faster per step than
    # waiting after each step, which pays host and device in turn
    assert pipelined / measurement.images_per_s > 1.1
    assert spread is not None and spread >= 0


class ClockStep:
    """A synchronous step (no dispatch of its own) that advances the engine's clock alone: the
    ``n``-th call costs ``cost(n)``, so no load on the machine can move a figure."""

    kind = "api"

    def __init__(self, now: list[float], cost) -> None:
        self.now, self.cost, self.calls = now, cost, 0

    def __call__(self) -> None:
        self.now[0] += self.cost(self.calls)
        self.calls += 1

    def compile(self) -> None:
        return None

    def finish(self) -> None:
        return None


def measure_clock_step(monkeypatch, cost, steps: int, warmup: int):
    now = [0.0]
    monkeypatch.setattr(timer, "clock", lambda: now[0])
    config = TimingConfig("mobilenetv2", 32, 2, mode="infer", steps=steps, warmup=warmup,
                          step="api")  # fmt: skip
    runner = SimulatedRunner(config)
    runner.kind, runner.step = "api", ClockStep(now, cost)
    runner.steps = {"api": runner.step}
    return runner, measure(runner)


def test_a_step_without_dispatch_runs_synchronously_in_the_pipelined_rounds(monkeypatch):
    runner, measurement = measure_clock_step(monkeypatch, lambda n: 0.002, steps=6, warmup=1)
    assert runner.step.calls == 1 + 6 + PIPELINE_ROUNDS * pipeline_depth(6)
    assert measurement.primary.kind == "api"
    ratio = measurement.pipelined_images_per_s[0] / measurement.images_per_s
    assert ratio == pytest.approx(1.0)  # synchronous rounds: nothing overlaps


def test_drift_over_the_phase_moves_latency_and_throughput_alike(monkeypatch):
    # every call 5 % dearer than the one before: timed steps first and pipelined rounds after
    # would read a ratio of 0.75; the pairs in the order AB BA AB BA leave the median round
    # and the median step in the same place (1.01: a median of rates, not of times)
    runner, measurement = measure_clock_step(monkeypatch, lambda n: 0.002 * (1 + 0.05 * n),
                                             steps=8, warmup=1)  # fmt: skip
    assert pipeline_depth(8) == 2 and len(measurement.primary.pipelined_s) == PIPELINE_ROUNDS
    ratio = measurement.pipelined_images_per_s[0] / measurement.images_per_s
    assert ratio == pytest.approx(1.0, abs=0.02)


def test_timed_slices_and_pipelined_rounds_alternate_in_pairs(monkeypatch):
    order: list[str] = []
    real_timed, real_pipelined = timer.timed_steps, timer.pipelined_rounds

    def timed(step, count, min_seconds=0.0):
        order.append(f"timed {count}")
        return real_timed(step, count, min_seconds)

    def pipelined(step, depth, rounds=PIPELINE_ROUNDS):
        order.append(f"pipelined {depth}x{rounds}")
        return real_pipelined(step, depth, rounds)

    monkeypatch.setattr(timer, "timed_steps", timed)
    monkeypatch.setattr(timer, "pipelined_rounds", pipelined)
    measure_clock_step(monkeypatch, lambda n: 0.001, steps=9, warmup=2)
    timed_slice, pipelined_round = "timed {}", "pipelined 2x1"
    assert order == [
        "timed 2",  # warm-up
        timed_slice.format(3), pipelined_round,
        pipelined_round, timed_slice.format(2),
        timed_slice.format(2), pipelined_round,
        pipelined_round, timed_slice.format(2),
    ]  # fmt: skip
