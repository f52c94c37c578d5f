"""castbench.stats against hand calculations."""

import math

import numpy as np
import pytest

from castbench.stats import (
    cell_summary,
    discordant_counts,
    holm,
    mcnemar,
    paired_bootstrap_difference,
)


def test_mcnemar_exact_against_hand_counts():
    # b=10, c=2: two-sided exact p = 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096
    result = mcnemar(10, 2)
    assert (result.b, result.c, result.statistic) == (10, 2, 2)
    assert result.p_value == pytest.approx(2 * 79 / 4096) == pytest.approx(0.0385742)
    assert mcnemar(2, 10).p_value == result.p_value  # symmetric in b and c
    assert mcnemar(0, 5).p_value == pytest.approx(2 / 32)  # the smallest p five images allow
    assert mcnemar(3, 3).p_value == 1.0
    assert mcnemar(0, 0).p_value == 1.0  # no discordant image: no evidence either way
    with pytest.raises(ValueError):
        mcnemar(-1, 2)


def test_discordant_counts_from_per_image_correctness():
    a = [True, True, True, False, False, True, False]
    b = [True, False, False, True, False, True, False]
    # A only right on images 1, 2; B only right on image 3
    assert discordant_counts(a, b) == (2, 1)
    with pytest.raises(ValueError, match="results"):
        discordant_counts([True], [True, False])


def test_cell_summary_t_interval_against_hand_calculation():
    # mean 2.5, sd sqrt(5/3), sem sd/2, t(0.975, 3) = 3.182446305 (tables)
    summary = cell_summary([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305 * math.sqrt(5 / 3) / 2
    assert summary["n"] == 4 and summary["mean"] == pytest.approx(2.5)
    assert summary["sd"] == pytest.approx(math.sqrt(5 / 3))
    assert summary["ci95_low"] == pytest.approx(2.5 - half, rel=1e-8)
    assert summary["ci95_high"] == pytest.approx(2.5 + half, rel=1e-8)


def test_cell_summary_edge_cases():
    one = cell_summary([97.5])
    assert one == {"n": 1, "mean": 97.5, "sd": None, "ci95_low": None, "ci95_high": None}
    same = cell_summary([63.38, 63.38, 63.38])  # identical runs: zero-width, not NaN
    assert same["sd"] == 0 and same["ci95_low"] == same["ci95_high"] == pytest.approx(63.38)
    with pytest.raises(ValueError):
        cell_summary([])
    with pytest.raises(ValueError, match="NaN"):
        cell_summary([1.0, float("nan")])


def test_holm_against_hand_adjustment():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_paired_bootstrap_difference():
    rng = np.random.default_rng(3)
    truth_b = rng.random(400) > 0.2  # B right on about 80 % of the images
    a = np.ones(400, dtype=bool)  # A right on all of them
    difference, low, high = paired_bootstrap_difference(a, truth_b)
    assert difference == pytest.approx(1 - truth_b.mean())
    assert 0 < low < difference < high < 0.3
    assert paired_bootstrap_difference(a, a) == (0.0, 0.0, 0.0)
    # two identical runs are the same evidence as one: resampling images keeps the interval
    twice = paired_bootstrap_difference(np.stack([a, a]), np.stack([truth_b, truth_b]))
    assert twice == pytest.approx((difference, low, high))
    with pytest.raises(ValueError, match="shapes"):
        paired_bootstrap_difference(a, truth_b[:10])
