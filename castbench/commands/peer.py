"""``castbench peer timm``: the timing matrix measured with PyTorch and timm's models."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from castbench.commands.matrix_options import (
    MATRIX_OPTIONS,
    positive_float,
    positive_int,
    summary_table,
)
from castbench.commands.options import JSON_ROWS, NO_PLOTS, add_command, add_command_group, option
from castbench.commands.output import print_json

TIMM_OPTIONS = (
    option(
        "--n-train",
        type=positive_int,
        default=None,
        help="training images per epoch (default: the seed's)",
    ),
    option(
        "--optimizer",
        choices=("adam", "sgd"),
        default="adam",
        help="the training step's optimizer (default adam, as castbench's Keras models)",
    ),
    option(
        "--compile",
        action="store_true",
        help="run the model through torch.compile (default: eager)",
    ),
    option(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="where to run (default: the GPU when PyTorch sees one)",
    ),
    option(
        "--budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="start no configuration after this long; what is left is listed, "
        "and --resume measures it later",
    ),
    option(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: results/timm-<date>-<time>)",
    ),
    option(
        "--resume",
        action="store_true",
        help="keep rows already in --out and measure only what is missing",
    ),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    frameworks = add_command_group(
        subparsers,
        "peer",
        "time the same backbones in another framework, in castbench's results schema",
        "Measure castbench's timing matrix with another framework's own models, "
        "for `castbench plot DIR --peer PEER_DIR` and "
        "`castbench compare DIR PEER_DIR --across framework`.",
        dest="framework",
        metavar="FRAMEWORK",
    )
    add_command(
        frameworks,
        "timm",
        "PyTorch + timm (the optional extra: pip install 'castbench[peer]')",
        "Time timm's versions of the backbones (backbone + global average pooling "
        "+ one unit, random weights): train = one optimizer step on binary cross-entropy, "
        "infer = a forward pass under torch.inference_mode, each ending with a device "
        "synchronisation; cuDNN benchmark mode on, eager unless --compile. Rows go to "
        "OUT/timing.csv and OUT/timing.json with backend 'torch'. NASNetMobile has no timm "
        "equivalent and gets a 'skipped' row.",
        [*MATRIX_OPTIONS, *TIMM_OPTIONS, NO_PLOTS, JSON_ROWS],
        func=run_timm,
        needs_backend=False,
    )


def run_timm(args: argparse.Namespace) -> int:
    from castbench.peer.sweep import run_peer_sweep
    from castbench.peer.torch_runner import TorchRunner
    from castbench.timing.config import MODES, build_matrix

    common = {"steps": args.steps, "warmup": args.warmup}
    if args.n_train:
        common["n_train"] = args.n_train
    # names, sizes and batch sizes are checked before PyTorch starts
    matrix = build_matrix(args.backbones, args.batch, args.mode or list(MODES), args.size,
                          **common)  # fmt: skip
    runner = TorchRunner(args.device, compile_model=args.compile, optimizer=args.optimizer)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("results") / f"timm-{stamp}"
    rows, left = run_peer_sweep(
        matrix, out, runner, args.argv, resume=args.resume, budget_s=args.budget
    )
    if left:
        print(
            f"castbench peer timm: the {args.budget:g} s budget is spent; {len(left)} "
            "configuration(s) left unmeasured (--resume measures them)",
            file=sys.stderr,
        )
    if not args.no_plots:
        import pandas as pd

        from castbench.timing.plots import plot_timing

        for path in plot_timing(pd.DataFrame(rows), out / "plots"):
            print(f"plot: {path}", file=sys.stderr)
    if args.json:
        print_json(rows)
    else:
        print(summary_table(rows))
    failed = [r for r in rows if r["status"] in ("error", "oom")]
    return 1 if failed else 0
