"""``castbench plot``: time-versus-batch plots from a timing results folder (also drawn at the
end of ``castbench timing``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from castbench.commands.options import add_command, option
from castbench.errors import UsageError

SEED_TIMING = Path(__file__).resolve().parents[2] / "results" / "seed" / "part4_timing.csv"


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "plot",
        "redraw time-versus-batch plots from a results folder",
        "Draw time per batch, time per epoch and images per second versus batch "
        "size from a timing results folder or a `pytest bench --benchmark-json` file.",
        [
            option(
                "source", type=Path, help="a timing results folder or a pytest-benchmark JSON file"
            ),
            option(
                "--out",
                type=Path,
                default=None,
                help="plot folder (default: SOURCE/plots, or beside a JSON file)",
            ),
            option("--seed", action="store_true", help="overlay the seed study's Part 4 numbers"),
            option(
                "--peer",
                type=Path,
                default=None,
                metavar="PEER",
                help="overlay another run's curves, dashed: e.g. a `castbench peer timm` "
                "results folder",
            ),
        ],
        func=run_plot,
        needs_backend=False,
    )


def draw(source: Path, out: Path, seed: bool, peer: Path | None = None) -> list[Path]:
    import pandas as pd

    from castbench.timing.plots import plot_timing
    from castbench.timing.sources import load_rows

    rows = pd.DataFrame(load_rows(source))
    if rows.empty:
        return []
    seed_table = pd.read_csv(SEED_TIMING) if seed else None
    peer_rows = pd.DataFrame(load_rows(peer)) if peer is not None else None
    runtimes = rows["runtime"].fillna("keras") if "runtime" in rows else pd.Series(["keras"])
    if runtimes.nunique() == 1:
        return plot_timing(rows, out, seed_table, peer_rows)
    from castbench.serving.plots import plot_latency_vs_recall, plot_runtimes
    from castbench.serving.report import write_latency_tables

    # time-versus-batch curves for Keras; the runtimes side by side in their own plot
    written = plot_timing(rows[runtimes == "keras"], out, seed_table, peer_rows)
    written += plot_runtimes(rows, out) + plot_latency_vs_recall(rows, out)
    return [*written, write_latency_tables(rows, out / "latency_by_runtime.md")]


def run_plot(args: argparse.Namespace) -> int:
    default_out = (
        args.source.parent / f"{args.source.stem}-plots"
        if args.source.is_file()
        else (args.source / "plots")
    )
    written = draw(args.source, args.out or default_out, seed=args.seed, peer=args.peer)
    if not written:
        raise UsageError(f"no successful timing rows to plot in {args.source}")
    for path in written:
        print(path)
    return 0
