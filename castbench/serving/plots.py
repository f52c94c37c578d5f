"""Latency per runtime: for each batch size, one group of bars per backbone, one bar per
runtime and precision (Keras and the serving runtimes), on a log scale; and, where rows scored a
test split, latency against recall, one point per runtime and precision."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from castbench.results import TIMED_STATUSES  # noqa: E402
from castbench.serving.report import KERAS, served_as  # noqa: E402

STEM = "latency_by_runtime"
RECALL_STEM = "latency_vs_recall"


def plot_runtimes(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``latency_by_runtime`` (PNG and SVG) into ``out_dir``; return the PNG path."""
    ok = rows[rows["status"].isin(TIMED_STATUSES) & (rows["mode"] == "infer")]
    if ok.empty:
        return []
    ok = ok.assign(runtime=served_as(ok))
    runtimes = sorted(set(ok["runtime"]), key=lambda r: (r != KERAS, r))
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
    fig.suptitle(f"{first['device']} · one synchronous batch per step", fontsize=11)
    return [_save(fig, out_dir, STEM)]


def plot_latency_vs_recall(rows: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``latency_vs_recall`` (PNG and SVG) for the rows that scored a test split: one
    panel per backbone and batch size, one point per runtime and precision, Keras float32
    (the model every artifact was exported from) as the reference point."""
    if "test_recall_pct" not in rows:
        return []
    scored = rows[rows["status"].isin(TIMED_STATUSES) & rows["test_recall_pct"].notna()]
    if scored.empty:
        return []
    scored = scored.assign(served=served_as(scored), ms=scored["step_s_median"] * 1e3)
    keras = rows[rows["status"].isin(TIMED_STATUSES) & (served_as(rows) == KERAS)]
    panels = list(scored.groupby(["backbone", "batch_size"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.5), squeeze=False)
    for ax, ((backbone, batch), subset) in zip(axes[0], panels, strict=True):
        for _, row in subset.iterrows():
            ax.scatter(row["ms"], row["test_recall_pct"], s=40)
            ax.annotate(row["served"], (row["ms"], row["test_recall_pct"]), fontsize=8,
                        xytext=(4, 3), textcoords="offset points")  # fmt: skip
        reference = keras[(keras["backbone"] == backbone) & (keras["batch_size"] == batch)]
        if not reference.empty:
            ms = reference["step_s_median"].iloc[0] * 1e3
            recall = subset["keras_test_recall_pct"].iloc[0]
            ax.scatter(ms, recall, marker="s", s=50, color="black")
            ax.annotate("keras float32", (ms, recall), fontsize=8, xytext=(4, -10),
                        textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("median latency per batch (ms, log)")
        ax.set_ylabel(f"recall on the test split (%), {int(subset['test_images'].iloc[0])} images")
        ax.set_title(f"{backbone}, batch size {batch}")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("what each runtime and precision costs in missed defects", fontsize=11)
    return [_save(fig, out_dir, RECALL_STEM)]


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> Path:
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "svg"):
        fig.savefig(out_dir / f"{stem}.{suffix}", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out_dir / f"{stem}.png"
