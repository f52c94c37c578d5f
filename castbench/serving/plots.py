"""Latency per runtime: for each batch size, one group of bars per backbone, one bar per
runtime (Keras and the serving runtimes), on a log scale."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from castbench.results import TIMED_STATUSES  # noqa: E402
from castbench.timing.config import RUNTIMES  # noqa: E402

STEM = "latency_by_runtime"


def plot_runtimes(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``latency_by_runtime`` (PNG and SVG) into ``out_dir``; return the PNG path."""
    ok = rows[rows["status"].isin(TIMED_STATUSES) & (rows["mode"] == "infer")]
    if ok.empty:
        return []
    ok = ok.assign(runtime=ok["runtime"].fillna("keras"))
    runtimes = [r for r in RUNTIMES if r in set(ok["runtime"])]
    backbones = list(dict.fromkeys(ok["backbone"]))
    batches = sorted(set(ok["batch_size"]))
    width = 0.8 / len(runtimes)
    size = (max(8.0, 1.1 * len(backbones)), 4.0 * len(batches))
    fig, axes = plt.subplots(len(batches), 1, figsize=size, squeeze=False)
    for ax, batch in zip(axes[:, 0], batches, strict=True):
        subset = ok[ok["batch_size"] == batch]
        for i, runtime in enumerate(runtimes):
            times = subset[subset["runtime"] == runtime].set_index("backbone")["step_s_median"]
            values = [times.get(b, np.nan) * 1e3 for b in backbones]
            positions = np.arange(len(backbones)) + (i - (len(runtimes) - 1) / 2) * width
            ax.bar(positions, values, width, label=runtime)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(backbones)), backbones, rotation=30, ha="right")
        ax.set_ylabel("median latency per batch (ms, log)")
        ax.set_title(f"inference, batch size {batch}")
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0, 0].legend(title="runtime", fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    first = ok.iloc[0]
    fig.suptitle(f"{first['device']} · float32 · one synchronous batch per step", fontsize=11)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "svg"):
        fig.savefig(out_dir / f"{STEM}.{suffix}", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [out_dir / f"{STEM}.png"]
