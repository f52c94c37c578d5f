"""The timing matrix as pytest-benchmark tests: one training or inference step per round.

    pytest bench --castbench-backbones mobilenetv2,vgg16 --castbench-batches 2,4,8 \
        --benchmark-json out.json

Each case is the step ``castbench timing`` measures, after the same warm-up; ``extra_info`` in
the JSON records the configuration, the model's size and cost, and the derived rates.
"""


def test_step(benchmark, timing_case):
    timing_case.benchmark(benchmark)
    assert benchmark.stats.stats.median > 0
