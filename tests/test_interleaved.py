"""Serving runtimes of one backbone and batch size are timed round robin: every runner gets all
its timed steps, in slices whose order rotates, and its probes cover its own slices only."""

import itertools

import pytest

from castbench.timing import probes, timer
from castbench.timing.config import TimingConfig, build_matrix
from castbench.timing.measurement import PIPELINE_ROUNDS, pipeline_depth
from castbench.timing.sweep import serving_units
from castbench.timing.timer import INTERLEAVED_SLICE, measure_interleaved


class LoggedStep:
    """Advances the engine's fake clock by its own cost and logs who ran."""

    kind = "onnxruntime"

    def __init__(self, name, cost, log, now):
        self.name, self.cost, self.log, self.now = name, cost, log, now

    def __call__(self):
        self.log.append(self.name)
        self.now[0] += self.cost

    def compile(self):
        return None

    def finish(self):
        return None


class LoggedRunner:
    model = None
    replicas = 1

    def __init__(self, name, cost, log, now, steps=12):
        self.config = TimingConfig("mobilenetv2", 32, 2, mode="infer", steps=steps, warmup=1,
                                   runtime="onnxruntime")  # fmt: skip
        self.global_batch = 2
        self.kind = "onnxruntime"
        self.steps = {self.kind: LoggedStep(name, cost, log, now)}


@pytest.fixture()
def fake_clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(timer, "clock", lambda: now[0])
    return now


def test_runners_take_turns_in_rotating_slices_and_keep_their_own_samples(fake_clock):
    log = []
    runners = [LoggedRunner(name, cost, log, fake_clock)
               for name, cost in (("a", 0.010), ("b", 0.020), ("c", 0.030))]  # fmt: skip
    measurements = measure_interleaved(runners)
    warm = 3  # one warm-up step each, in turn
    slices = [len(list(g)) for _, g in itertools.groupby(log[warm:])]
    timed_turns = -(-12 // INTERLEAVED_SLICE) * 3  # 12 steps in slices of 5, 5, 2
    assert slices[:timed_turns] == [5, 5, 5, 5, 5, 5, 2, 2, 2]
    order = [name for name, _ in itertools.groupby(log[warm:])][:timed_turns]
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # who goes first rotates
    assert log.count("a") == 1 + 12 + PIPELINE_ROUNDS * pipeline_depth(12)
    for measurement, cost in zip(measurements, (0.010, 0.020, 0.030), strict=True):
        assert measurement.primary.samples_s == pytest.approx([cost] * 12)
        assert len(measurement.primary.pipelined_s) == PIPELINE_ROUNDS


def test_a_runner_with_a_keras_model_or_two_kinds_is_not_interleaved(fake_clock):
    runner = LoggedRunner("a", 0.01, [], fake_clock)
    runner.model = object()
    with pytest.raises(ValueError, match="single-kind"):
        measure_interleaved([runner])


def test_a_monitor_entered_for_several_slices_covers_those_slices_only(monkeypatch):
    readings = iter(range(1000))
    monkeypatch.setattr(probes._Nvml, "sample", lambda self: (1.0, 50.0, 100.0))
    monkeypatch.setattr(probes.time, "perf_counter", lambda: float(next(readings)))
    monitor = probes.ResourceMonitor(interval_s=60.0)  # the thread never samples in between
    for _ in range(2):
        with monitor:
            pass
        next(readings)  # time passes between the slices, outside any window
    # each window spans one clock tick; the gap between them counts for neither
    assert monitor.window_s == pytest.approx(2.0)
    # 100 W between each window's first and last sample (3 ticks apart: sample, start, end,
    # sample): 300 J a window; integrated across the gap it would be 800
    assert monitor.energy_j() == pytest.approx(2 * 300.0)


def test_serving_runtimes_of_one_batch_size_form_one_round_robin_unit():
    matrix = build_matrix(["mobilenetv2"], [1, 8], ["infer"], 32,
                          runtimes=["keras", "onnxruntime", "litert"])  # fmt: skip
    units = serving_units(matrix)
    assert [[(c.runtime, c.batch_size) for c in unit] for unit in units] == [
        [("keras", 1)], [("onnxruntime", 1), ("litert", 1)],
        [("keras", 8)], [("onnxruntime", 8), ("litert", 8)],
    ]  # fmt: skip
    assert [c for unit in units for c in unit] == matrix  # rows come back in matrix order
