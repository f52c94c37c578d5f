"""matplotlib figures (Agg backend), sized and lettered to stay readable in print.

Every function takes plain Python data (lists of dicts) and a path, draws one PNG with
``bbox_inches="tight"`` and returns the path. Legends sit outside the axes or below them so they
never hide data or get cut off.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from castbench.report.cells import interval  # noqa: E402
from castbench.report.load import finite_number as _num  # noqa: E402

DPI = 150
STYLE = {
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "figure.titlesize": 15,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
# Colour-blind-safe (Okabe–Ito) and distinguishable in grey print via hatches/markers.
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
HATCHES = ["", "//", "..", "xx", "\\\\", "++"]
METRICS = (("accuracy_pct", "Accuracy (%)"), ("recall_pct", "Recall (%)"), ("f1", "F1"))
Interval = tuple[float, float]


@dataclass(frozen=True)
class Point:
    """One model on a speed–accuracy plot; the intervals (None: one run) become whiskers."""

    name: str
    x: float
    y: float
    x_interval: Interval | None = None
    y_interval: Interval | None = None


def _whiskers(centres: Sequence[float | None], intervals: Sequence[Interval | None]):
    """Asymmetric error lengths for matplotlib (2 x n), 0 where there is no interval."""
    below, above = [], []
    for centre, span in zip(centres, intervals, strict=True):
        if centre is None or span is None:
            below.append(0.0)
            above.append(0.0)
        else:
            below.append(max(0.0, centre - span[0]))
            above.append(max(0.0, span[1] - centre))
    return [below, above]


def series_of(row: dict[str, Any]) -> str:
    """A timing row's series (backbone and variant, see castbench.report.load), or a quality
    row's backbone."""
    return row.get("series") or str(row["backbone"])


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _bar_series(
    ax,
    positions: list[int],
    height: float,
    index: int,
    cells: list[dict[str, Any] | None],
    column: str,
    label: str,
):
    """Series ``index`` of a grouped horizontal bar chart: each cell's mean of ``column`` with
    its 95 % interval as a whisker; a missing value is drawn as 0."""
    means = [None if c is None else _num(c.get(f"{column}_mean")) for c in cells]
    intervals = [None if c is None else interval(c, column) for c in cells]
    ax.barh(
        [p - 0.4 + height * (index + 0.5) for p in positions],
        [v if v is not None else 0 for v in means],
        height=height,
        color=COLOURS[index % len(COLOURS)],
        hatch=HATCHES[index % len(HATCHES)],
        edgecolor="white" if index == 0 else "black",
        label=label,
        xerr=_whiskers(means, intervals) if any(intervals) else None,
        error_kw={"ecolor": "black", "capsize": 3, "elinewidth": 1.4},
    )


def _tick_labels(names: list[str], series, key: str) -> list[str]:
    """``names``, marked where a source's runs of that model predict one class for every image
    (its bars show class shares, not skill)."""
    flagged = {c[key] for _, cells in series for c in cells if c.get("one_class_runs")}
    return [f"{n} (one class)" if n in flagged else n for n in names]


def _metric_panel(
    ax,
    names: list[str],
    series: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    key: str,
    column: str,
    label: str,
    first: bool,
) -> None:
    """One metric's panel of grouped horizontal bars: a group per name (top to bottom), found in
    each source's cells under ``key``, and a bar per source; only the ``first`` panel of a row
    names the groups, the others share its rows."""
    positions = list(range(len(names)))
    height = 0.8 / max(1, len(series))
    for index, (source, cells) in enumerate(series):
        by_name = {c[key]: c for c in cells}
        _bar_series(ax, positions, height, index, [by_name.get(n) for n in names], column, source)
    ax.set_yticks(positions)
    ax.set_yticklabels(_tick_labels(names, series, key) if first else [])
    ax.invert_yaxis()
    ax.set_xlabel(label)


def _lowest(series: Sequence[tuple[str, Sequence[dict[str, Any]]]], column: str) -> float:
    """The smallest mean or interval end of ``column`` in any series (0 when there is none)."""
    values = []
    for _, cells in series:
        for cell in cells:
            values.append(_num(cell.get(f"{column}_mean")))
            values.append((interval(cell, column) or (None, None))[0])
    return min((v for v in values if v is not None), default=0)


def plot_history(history: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Training curves: loss and accuracy per epoch, training and validation."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        epochs = [row["epoch"] for row in history]
        for ax, metric, label in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
            for prefix, name, style in (("", "training", "-o"), ("val_", "validation", "--s")):
                values = [_num(row.get(prefix + metric)) for row in history]
                if any(v is not None for v in values):
                    ax.plot(epochs, values, style, label=name, linewidth=2)
            ax.set_xlabel("Epoch")
            ax.set_ylabel(label)
            if epochs:
                ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: max(1, len(epochs) // 10)])
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.08))
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return _save(fig, path)


def plot_backbones(
    timing: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    quality: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    path: Path,
) -> Path:
    """Time per training step against batch size (one panel per timing source, top row) beside
    accuracy, recall and F1 per backbone (one bar per source, bottom row, 95 % interval whiskers).

    ``timing``: (label, rows with backbone, batch_size, step_s) ; ``quality``: (label, cells
    with backbone and ``<metric>_mean`` / ``_ci95_low`` / ``_ci95_high``, see
    ``castbench.report.cells``).
    """
    names: list[str] = []
    for _, rows in [*quality, *timing]:
        for row in rows:
            if series_of(row) not in names:
                names.append(series_of(row))
    colour = {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(names)}
    marker = {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(names)}
    n_top = len(timing)
    n_bottom = 3 if quality else 0
    columns = max(n_top, n_bottom, 1)
    rows_of_panels = (1 if n_top else 0) + (1 if n_bottom else 0)
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(5.2 * columns, 5.2 * rows_of_panels + 0.6))
        grid = fig.add_gridspec(rows_of_panels, columns)
        for index, (label, rows) in enumerate(timing):
            ax = fig.add_subplot(grid[0, index])
            for name in names:
                points = sorted(
                    (int(r["batch_size"]), _num(r["step_s"]))
                    for r in rows
                    if series_of(r) == name and _num(r.get("step_s")) is not None
                )
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker=marker[name], color=colour[name], label=name, lw=2)
            batches = sorted({int(r["batch_size"]) for r in rows})
            ax.set_xticks(batches)
            ax.set_xlabel("Batch size")
            ax.set_ylabel("Time per training step (s)")
            ax.set_title(f"Step time: {label}")
        if quality:
            row_index = 1 if n_top else 0
            for m, (column, axis_label) in enumerate(METRICS):
                ax = fig.add_subplot(grid[row_index, m])
                _metric_panel(ax, names, quality, "backbone", column, axis_label, m == 0)
                ax.set_title(axis_label)
                low = _lowest(quality, column)
                top = 100 if column != "f1" else 1
                ax.set_xlim(max(0, low - 0.1 * top) if low > 0.5 * top else 0, top * 1.01)
            handles, labels = fig.axes[-1].get_legend_handles_labels()
            fig.legend(handles, labels, loc="lower center", ncol=len(labels),
                       bbox_to_anchor=(0.5, -0.04))  # fmt: skip
        if timing:
            from matplotlib.lines import Line2D

            timed = {series_of(r) for _, rows in timing for r in rows}
            shown = [n for n in names if n in timed]
            handles = [Line2D([], [], color=colour[n], marker=marker[n], lw=2) for n in shown]
            fig.axes[n_top - 1].legend(handles, shown, loc="upper left",
                                       bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # fmt: skip
        fig.tight_layout()
        return _save(fig, path)


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Points not beaten by another that is at least as fast and at least as accurate
    (lower x and higher y are better), ordered by x."""
    front = []
    for name, x, y in points:
        dominated = any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for _, x2, y2 in points)
        if not dominated:
            front.append((name, x, y))
    return sorted(front, key=lambda p: (p[1], -p[2]))


def plot_pareto(
    series: Sequence[tuple[str, Sequence[Point]]],
    path: Path,
    xlabel: str,
    ylabel: str = "Accuracy (%)",
    title: str = "Speed against accuracy",
) -> Path:
    """One scatter per series with interval whiskers, points named, the Pareto front of the
    centres joined and ringed."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(10, 6.5))
        for s, (label, points) in enumerate(series):
            if not points:
                continue
            colour = COLOURS[s % len(COLOURS)]
            xs = [p.x for p in points]
            ys = [p.y for p in points]
            x_intervals = [p.x_interval for p in points]
            y_intervals = [p.y_interval for p in points]
            if any(x_intervals) or any(y_intervals):
                ax.errorbar(xs, ys, xerr=_whiskers(xs, x_intervals),
                            yerr=_whiskers(ys, y_intervals), fmt="none", ecolor=colour,
                            elinewidth=1.4, capsize=4, zorder=2)  # fmt: skip
            ax.scatter(xs, ys, s=70, color=colour, marker=MARKERS[s % len(MARKERS)],
                       label=label, zorder=3)  # fmt: skip
            for rank, p in enumerate(sorted(points, key=lambda p: (p.y, p.x))):
                offset = (6, 4) if rank % 2 == 0 else (6, -14)  # alternate to limit overlaps
                ax.annotate(p.name, (p.x, p.y), textcoords="offset points", xytext=offset,
                            fontsize=11)  # fmt: skip
            front = pareto_front([(p.name, p.x, p.y) for p in points])
            ax.step([p[1] for p in front], [p[2] for p in front], where="post", color=colour,
                    linestyle="--", linewidth=1.8, label=f"{label}: Pareto front")  # fmt: skip
            ax.scatter([p[1] for p in front], [p[2] for p in front], s=220, facecolors="none",
                       edgecolors=colour, linewidths=2, zorder=4)  # fmt: skip
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        xs = [p.x for _, pts in series for p in pts]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, borderaxespad=0)
        fig.tight_layout()
        return _save(fig, path)


def plot_thresholds(
    series: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    path: Path,
) -> Path:
    """Accuracy, recall and F1 against the decision threshold: mean line, 95 % interval band
    (cells of ``castbench.report.cells``, one per threshold)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(16, 5))
        for ax, (column, label) in zip(axes, METRICS, strict=True):
            for s, (name, cells) in enumerate(series):
                points = sorted(
                    (float(c["threshold"]), mean, interval(c, column) or (mean, mean))
                    for c in cells
                    if (mean := _num(c.get(f"{column}_mean"))) is not None
                )
                if not points:
                    continue
                xs, means, intervals = zip(*points, strict=True)
                colour = COLOURS[s % len(COLOURS)]
                runs = max(int(c.get("runs") or 1) for c in cells)
                ax.plot(xs, means, marker=MARKERS[s % len(MARKERS)], color=colour, linewidth=2,
                        label=f"{name} (n={runs})")  # fmt: skip
                ax.fill_between(
                    xs,
                    [low for low, _ in intervals],
                    [high for _, high in intervals],
                    color=colour,
                    alpha=0.18,
                    hatch=HATCHES[s % len(HATCHES)],
                )
            ax.set_xlabel("Decision threshold")
            ax.set_ylabel(label)
            ax.set_title(f"{label}, mean, 95 % CI")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=len(labels),
                       bbox_to_anchor=(0.5, -0.08))  # fmt: skip
        fig.tight_layout()
        return _save(fig, path)


def plot_variants(
    series: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    path: Path,
    title: str = "",
) -> Path:
    """Accuracy, recall and F1 per variant (cells of an experiment), one bar per source, 95 %
    interval whiskers."""
    variants: list[str] = []
    for _, rows in series:
        for row in rows:
            if row["variant"] not in variants:
                variants.append(row["variant"])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1, 3, figsize=(18, 1.0 + 0.55 * len(variants) * max(1, len(series)) ** 0.5)
        )
        for m, (ax, (column, label)) in enumerate(zip(axes, METRICS, strict=True)):
            _metric_panel(ax, variants, series, "variant", column, label, m == 0)
            ax.set_xlim(0, 100 * 1.01 if column != "f1" else 1.01)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels),
                   bbox_to_anchor=(0.5, -0.06))  # fmt: skip
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return _save(fig, path)


def plot_confusions(
    matrices: Sequence[tuple[str, Sequence[Sequence[int]]]],
    path: Path,
    columns: int = 4,
) -> Path:
    """Confusion matrices at threshold 0.5 (rows actual, columns predicted; ok, defect)."""
    n = len(matrices)
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(rows, columns, figsize=(3.9 * columns, 3.8 * rows), squeeze=False)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        for ax, (title, matrix) in zip(axes.flat, matrices, strict=False):
            total = sum(sum(r) for r in matrix) or 1
            ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(max(r) for r in matrix) or 1)
            for i in range(2):
                for j in range(2):
                    value = matrix[i][j]
                    dark = value > 0.6 * (max(max(r) for r in matrix) or 1)
                    ax.text(
                        j,
                        i,
                        f"{value}\n{100 * value / total:.1f}%",
                        ha="center",
                        va="center",
                        fontsize=13,
                        color="white" if dark else "black",
                    )
            ax.set_xticks([0, 1], ["ok", "defect"])
            ax.set_yticks([0, 1], ["ok", "defect"])
            ax.set_xlabel("Predicted")
            ax.set_ylabel("Actual")
            ax.set_title(textwrap.fill(title, 34), fontsize=12)
        fig.tight_layout()
        return _save(fig, path)
