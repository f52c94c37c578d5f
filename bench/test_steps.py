"""The timing matrix as pytest-benchmark tests: one training or inference step per round.

    pytest bench --castbench-backbones mobilenetv2,vgg16 --castbench-batches 2,4,8 \
        --benchmark-json out.json

Each case is the step ``castbench timing`` measures, after the same warm-up; ``extra_info`` in
the JSON records the configuration, the model's size and cost, and the derived rates.
"""

import pytest


def test_step(benchmark, timing_case):
    timing_case.benchmark(benchmark)
    stats, extra = benchmark.stats.stats, benchmark.extra_info
    # every timed round is one step of the configuration, after the warm-up
    assert stats.rounds == timing_case.config.steps == len(stats.data)
    # the rates in the JSON are the benchmark's own median, turned into images/s and epochs
    assert extra["images_per_s"] == pytest.approx(extra["batch_size"] / stats.median)
    assert extra["epoch_s"] == pytest.approx(extra["steps_per_epoch"] * stats.median)
    # a Keras step's first call compiled (or loaded) what the timed steps run: it is no steady
    # step. A serving session was optimised when it opened and ran the gate batch before its
    # warm-up, so its first step is an ordinary one and may well be its fastest.
    if extra["runtime"] == "keras":
        assert extra["first_step_s"] >= stats.min
