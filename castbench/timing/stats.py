"""Summary statistics of step-time samples. Pure functions, no framework imports."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Mean, median, p90, p99, sample standard deviation, min and max of step times."""
    if not samples:
        raise ValueError("no samples")
    return {
        "step_s_mean": statistics.fmean(samples),
        "step_s_median": statistics.median(samples),
        "step_s_p90": percentile(samples, 90),
        "step_s_p99": percentile(samples, 99),
        "step_s_std": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "step_s_min": min(samples),
        "step_s_max": max(samples),
    }
