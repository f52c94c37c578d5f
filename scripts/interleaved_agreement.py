"""pytest module for ``tool_agreement.py --placement interleaved``: each case is timed twice on
the same model within seconds, once by ``castbench timing``'s ``measure`` (its warm-up, its timed
steps) and once by pytest-benchmark through castbench's plugin, the order alternating by round.
Both results land in the benchmark's ``extra_info``. Run it through ``tool_agreement.py``.
"""

from __future__ import annotations

import os

import pytest

from castbench.timing.timer import measure

ROUNDS = int(os.environ.get("CASTBENCH_AGREEMENT_ROUNDS", "4"))


@pytest.mark.parametrize("round_index", range(ROUNDS))
def test_engine_and_benchmark(benchmark, timing_case, round_index: int) -> None:
    def engine() -> None:
        timed = measure(timing_case.runner).primary
        benchmark.extra_info.update(engine_median_s=timed.median,
                                    engine_samples_s=list(timed.samples_s))  # fmt: skip

    if round_index % 2 == 0:
        engine()
        timing_case.benchmark(benchmark)
    else:
        timing_case.benchmark(benchmark)
        engine()
    benchmark.extra_info["round"] = round_index
    assert benchmark.extra_info["engine_median_s"] > 0
