"""Statistics for honest comparisons, on top of ``scipy.stats``: a cell's mean, sample sd and
t interval; McNemar's exact test and a paired bootstrap for two classifiers scored on the same
test images; Holm's step-down adjustment for many pairs; the Mann-Whitney U test on step times.

Pure functions on plain sequences and NumPy arrays; no TensorFlow.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95


def cell_summary(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``n``, ``mean``, sample ``sd`` (ddof=1) and the t interval of the mean
    (``ci95_low``, ``ci95_high``) of one cell's values (one configuration over its runs).

    One value has no spread: sd and interval are None. Values that are all equal have sd 0 and
    an interval of zero width (the t interval degenerates; scipy would give NaN).
    """
    data = np.asarray([float(v) for v in values], dtype=float)
    if data.size == 0:
        raise ValueError("cell_summary needs at least one value")
    if np.isnan(data).any():
        raise ValueError("cell_summary got a NaN")
    summary: dict[str, Any] = {"n": int(data.size), "mean": float(data.mean()), "sd": None,
                               "ci95_low": None, "ci95_high": None}  # fmt: skip
    if data.size == 1:
        return summary
    sd = float(np.std(data, ddof=1))
    summary["sd"] = sd
    if sd == 0:
        summary["ci95_low"] = summary["ci95_high"] = summary["mean"]
        return summary
    low, high = sps.t.interval(
        confidence, df=data.size - 1, loc=summary["mean"], scale=sps.sem(data)
    )
    summary["ci95_low"], summary["ci95_high"] = float(low), float(high)
    return summary


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two classifiers on the same images.

    ``b``: images A got right and B wrong; ``c``: A wrong, B right. Under the null hypothesis
    (equal error rates) each discordant image is a fair coin, so the exact two-sided p-value is
    the binomial test of ``b`` successes in ``b + c`` trials at 0.5. ``statistic`` is
    ``min(b, c)``, as the exact form of the test reports it.
    """

    b: int
    c: int
    statistic: int
    p_value: float


def mcnemar(b: int, c: int) -> McNemar:
    """McNemar's exact test from the discordant counts; no discordant image gives p = 1."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    p_value = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5).pvalue)
    return McNemar(b=int(b), c=int(c), statistic=int(min(b, c)), p_value=min(1.0, p_value))


def discordant_counts(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> tuple[int, int]:
    """(b, c) from per-image correctness of A and B, aligned image by image."""
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} results for A but {b.size} for B")
    return int(np.sum(a & ~b)), int(np.sum(~a & b))


def paired_bootstrap_difference(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """Accuracy of A minus accuracy of B, with a percentile bootstrap interval that resamples
    test images.

    ``correct_a`` / ``correct_b``: booleans shaped (images,) or (runs, images). With several
    runs an image is resampled with all its runs, so runs that share an image are not counted
    as independent evidence. Returns (difference, low, high) as fractions.
    """
    a = np.atleast_2d(np.asarray(correct_a, dtype=float))
    b = np.atleast_2d(np.asarray(correct_b, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} against {b.shape}")
    per_image = (a - b).mean(axis=0)
    difference = float(per_image.mean())
    if np.ptp(per_image) == 0:  # every resample is the same
        return difference, difference, difference
    result = sps.bootstrap(
        (per_image,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return difference, float(interval.low), float(interval.high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest of m is
    multiplied by (m - k + 1), then made non-decreasing and capped at 1. It keeps the chance of
    any false "significant" among the m tests at or below alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (U of ``a``, p-value).

    The normal approximation with tie and continuity correction (``scipy.stats.mannwhitneyu``,
    ``method="asymptotic"``), chosen over the exact method so that ties in timer readings are
    handled the same way at every sample size. With a handful of samples the test is
    conservative: 3 against 3, even fully separated, is not significant at 0.05.
    """
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both samples need at least one value")
    result = sps.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    p_value = float(result.pvalue)
    # every value tied: zero variance, scipy answers NaN; no evidence of a difference
    return float(result.statistic), 1.0 if math.isnan(p_value) else p_value


def welch_t(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch's t-test p-value (unequal variances) of two small independent samples,
    such as per-process medians. Identical constant samples give 1, distinct ones 0."""
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(sps.ttest_ind(a, b, equal_var=False).pvalue)
