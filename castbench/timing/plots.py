"""Time versus batch size plots from timing rows: per batch, per epoch and images per second,
one curve per backbone, training and inference side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from castbench.identity import ConfigIdentity  # noqa: E402
from castbench.timing.config import SEED_TRAIN_IMAGES  # noqa: E402

MODE_TITLES = {"train": "training step", "infer": "inference step"}
LINESTYLES = ("-", "-.", ":", (0, (5, 1)))  # a backbone's further variants, told apart
SEED_LABEL = "seed study (GPU, input pipeline included)"


def _metrics(frame: pd.DataFrame) -> dict[str, tuple[str, str, str | None]]:
    """file stem -> (column, y label, spread column)."""
    return {
        "time_per_batch": ("step_s_median", "time per batch (s), median ± sd", "step_s_std"),
        "time_per_epoch": ("epoch_s", "time per epoch (s) = ceil(n_train / bs) × step", None),
        "images_per_second": ("images_per_s", "images per second", None),
    }


def plot_timing(
    rows: pd.DataFrame,
    out_dir: Path,
    seed: pd.DataFrame | None = None,
    peer: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the three plots (PNG and SVG) into ``out_dir``; return the PNG paths.

    ``seed`` (the seed study's Part 4 table) adds its numbers as dashed curves on the training
    panels: its per-batch times, its epochs as it reported them, and images per second.
    ``peer`` (rows of another run, e.g. ``castbench peer timm``) adds its curves dashed, with
    square markers, in each backbone's colour.
    """
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return []
    has_peer = peer is not None and not peer.empty
    peer_ok = peer[peer["status"] == "ok"] if has_peer else ok.iloc[0:0]
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = [m for m in ("train", "infer") if m in set(ok["mode"])]
    backbones = list(dict.fromkeys(ok["backbone"]))
    colours = dict(zip(backbones, plt.cm.tab10.colors * 3, strict=False))
    written = []
    for stem, (column, ylabel, spread) in _metrics(ok).items():
        fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 5), squeeze=False)
        for ax, mode in zip(axes[0], modes, strict=True):
            subset = ok[ok["mode"] == mode]
            for number, (series, curve) in enumerate(_curves(subset)):
                curve = curve.sort_values("batch_size")
                label = f"{curve['backbone'].iloc[0]} ({series.input_size}px)"
                label += f" {series.variant()}" if series.variant() else ""
                ax.errorbar(curve["batch_size"], curve[column],
                            yerr=curve[spread] if spread else None, marker="o", capsize=3,
                            linestyle=LINESTYLES[number % len(LINESTYLES)] if series.variant()
                            else "-", color=colours[curve["backbone"].iloc[0]],
                            label=label)  # fmt: skip
            if seed is not None and mode == "train":
                _overlay_seed(ax, seed, stem, colours)
            if not peer_ok.empty:
                _overlay_peer(ax, peer_ok[peer_ok["mode"] == mode], column, colours)
            ax.set_title(MODE_TITLES.get(mode, mode), fontsize=13)
            ax.set_xlabel("batch size", fontsize=12)
            ax.set_ylabel(ylabel, fontsize=11)
            ax.set_xticks(sorted(set(ok["batch_size"])))
            ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=10)
        title = _title(rows)
        if not peer_ok.empty:
            title += f"  (dashed, squares: {_title(peer_ok)})"
        fig.suptitle(title, fontsize=12)
        fig.tight_layout()
        for suffix in ("png", "svg"):
            path = out_dir / f"{stem}.{suffix}"
            fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(out_dir / f"{stem}.png")
    return written


def _curves(rows: pd.DataFrame) -> list[tuple[ConfigIdentity, pd.DataFrame]]:
    """One curve per configuration less its batch size, so rows of two step kinds, precisions
    or strategies in one folder draw two curves instead of one that zig-zags between them."""
    series = [ConfigIdentity.from_row(row).series() for row in rows.to_dict("records")]
    keyed = rows.assign(_series=series)
    return [(key, group) for key, group in keyed.groupby("_series", sort=False)]


def _overlay_seed(ax, seed: pd.DataFrame, stem: str, colours: dict) -> None:
    """Dashed seed curves. Its reported epochs divided the batch size twice, so the epoch
    panel shows its per-batch time x ceil(n_train / bs), the epoch it actually implies."""
    for backbone, curve in seed.groupby("backbone", sort=False):
        if backbone not in colours:
            continue
        curve = curve.sort_values("batch_size")
        per_batch = curve["batch_s_reported"]
        values = {
            "time_per_batch": per_batch,
            "time_per_epoch": per_batch * np.ceil(SEED_TRAIN_IMAGES / curve["batch_size"]),
            "images_per_second": curve["batch_size"] / per_batch,
        }[stem]
        ax.plot(curve["batch_size"], values, linestyle="--", alpha=0.6, color=colours[backbone])
    ax.plot([], [], linestyle="--", color="grey", label=SEED_LABEL)


def _overlay_peer(ax, peer: pd.DataFrame, column: str, colours: dict) -> None:
    """The peer's curve of each backbone the main run has, dashed in the same colour."""
    for backbone, curve in peer.groupby("backbone", sort=False):
        if backbone not in colours:
            continue
        curve = curve.sort_values("batch_size")
        ax.plot(curve["batch_size"], curve[column], linestyle="--", marker="s", alpha=0.7,
                color=colours[backbone])  # fmt: skip
    if not peer.empty:
        first = peer.iloc[0]
        ax.plot([], [], linestyle="--", marker="s", color="grey",
                label=f"{first['backend']} peer, same colours")  # fmt: skip


def _title(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return f"{first['device']} · {first['backend']} · {first['precision']}"
