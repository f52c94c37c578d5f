"""``castbench train``, ``castbench experiment`` and ``castbench report``: accuracy, recall,
precision and F1 next to time."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from castbench.commands.options import add_command, option
from castbench.commands.registry import MODEL_OPTIONS, spec_from_args
from castbench.errors import UsageError
from castbench.recipes import (
    DEFAULT_PRECISE_BN_BATCHES,
    RECIPE_CHOICES,
    RECIPES,
    SCHEDULES,
    Resolved,
)
from castbench.spec import HEADS

JIT_CHOICES = {"auto": "auto", "on": True, "off": False}

# The schedule: a recipe, and flags that override single values of it.
RECIPE_OPTIONS = (
    option(
        "--recipe",
        choices=RECIPE_CHOICES,
        default="auto",
        help="auto (default): scratch from random weights, seed otherwise. "
        f"{RECIPES['seed'].summary()}; {RECIPES['scratch'].summary()}. "
        "The flags below override single values",
    ),
    option("--batch", type=int, default=None, help="batch size (recipe's)"),
    option("--epochs", type=int, default=None, help="epochs (recipe's)"),
    option("--lr", type=float, default=None, help="(peak) learning rate (recipe's)"),
    option("--schedule", choices=SCHEDULES, default=None, help="recipe's"),
    option("--warmup", type=float, default=None, help="warm-up epochs (recipe's)"),
    option(
        "--weight-decay", type=float, default=None, help="decoupled weight decay, AdamW (recipe's)"
    ),
    option(
        "--aug",
        default=None,
        help="augmentation preset (default: the recipe's, which an experiment gives the rows "
        "that name none of their own); in an experiment, every row's (all but architecture and "
        "augmentation)",
    ),
    option(
        "--precise-bn",
        type=int,
        default=None,
        metavar="K",
        help="before each validation, recompute batch-norm statistics over K training batches; "
        f"0: off (default: {DEFAULT_PRECISE_BN_BATCHES} when the backbone trains from random "
        "weights, else off)",
    ),
)

# The data, the schedule and compilation: every command that trains takes them.
DATA_OPTIONS = (
    option(
        "--data",
        default=None,
        help="casting data root (train/ and test/ with def_front/ and ok_front/); "
        "default: the built-in synthetic stand-in",
    ),
    *RECIPE_OPTIONS,
    option(
        "--jit",
        choices=sorted(JIT_CHOICES),
        default="auto",
        help="XLA compilation of the train step (default auto; off compiles faster on a CPU)",
    ),
)

TRAIN_OPTIONS = (
    option("--backbone", required=True, help="backbone name, case-insensitive"),
    *MODEL_OPTIONS,
    *DATA_OPTIONS,
    option("--seed", type=int, default=0, help="random seed (default: 0)"),
    option(
        "--out",
        default=None,
        help="results folder (default: results/train/<backbone>-<size>-<head>-<aug>-bs<N>-s<S>)",
    ),
    option(
        "--resume",
        action="store_true",
        help="go on from the last finished epoch of an interrupted run in --out",
    ),
)

# Every option of ``castbench experiment`` but its positional name.
EXPERIMENT_OPTIONS = (
    *DATA_OPTIONS,
    option(
        "--size",
        type=int,
        default=None,
        help="input size for every row, raised to each backbone's minimum "
        "(default: each backbone's native size)",
    ),
    option(
        "--runs",
        type=int,
        default=None,
        help="runs of every row, seeds SEED, SEED+1, ... (default: 10 for threshold, else 1)",
    ),
    option("--seed", type=int, default=0, help="base random seed (default: 0)"),
    option(
        "--backbone",
        default=None,
        help="train every row on this backbone instead of the seed's EfficientNetB4 "
        "(architecture, augmentation, threshold)",
    ),
    option(
        "--head",
        choices=HEADS,
        default=None,
        help="train every row with this head instead of the grid's (all but architecture)",
    ),
    option("--only", action="append", default=None, help="train only these rows (comma-separated)"),
    option("--out", default=None, help="results folder (default: results/experiments/<name>)"),
    option(
        "--resume",
        action="store_true",
        help="keep finished rows in --out, train the rest (an interrupted row goes on from its "
        "last finished epoch)",
    ),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from castbench.experiments import EXPERIMENTS

    add_command(
        subparsers,
        "train",
        "train one backbone + head and score it on the test split",
        "Train with a validation split, keep the best epoch by validation loss "
        "(.weights.h5), evaluate on the test split and write metrics per threshold 0.1-0.9 "
        "(CSV + JSON), the confusion matrix at 0.5, training curves and timings.",
        TRAIN_OPTIONS,
        func=run_train,
    )
    add_command(
        subparsers,
        "experiment",
        "run one of the seed study's accuracy experiments",
        "Train every configuration of a seed experiment and write one tidy table "
        "(CSV + JSON): architecture (Part 1), augmentation (Part 2), backbone (Part 3), "
        "threshold (Part 5, repeated runs). Rows are written as they finish; --resume skips "
        "finished ones.",
        [
            option("name", choices=list(EXPERIMENTS), help="which experiment"),
            *EXPERIMENT_OPTIONS,
        ],
        func=run_experiment,
    )
    add_command(
        subparsers,
        "report",
        "Markdown + HTML report from results folders",
        "Write report.md, report.html and figures/ from any mix of experiment "
        "folders, timing folders (timing.csv), training runs and the seed's reference "
        "numbers (results/seed).",
        [
            option("folders", nargs="+", metavar="DIR", help="results folders"),
            option("--out", default="report", help="output folder (default: report)"),
        ],
        func=run_report,
    )


def _resolved(args: argparse.Namespace, weights: str = "none", trainable: str = "all") -> Resolved:
    from castbench.recipes import resolve

    return resolve(
        args.recipe,
        weights,
        trainable,
        precise_bn=args.precise_bn,
        epochs=args.epochs,
        batch_size=args.batch,
        learning_rate=args.lr,
        schedule=args.schedule,
        warmup_epochs=args.warmup,
        weight_decay=args.weight_decay,
        size=args.size,
        augment=args.aug,
    )


def _run_fields(args: argparse.Namespace, chosen: Resolved) -> dict[str, Any]:
    """What a training run (``TrainConfig``) and an experiment (``Settings``) take alike from
    the command line and the resolved recipe, under the same names."""
    return {
        "data": args.data,
        "epochs": chosen.recipe.epochs,
        "seed": args.seed,
        "learning_rate": chosen.recipe.learning_rate,
        "jit_compile": JIT_CHOICES[args.jit],
        **chosen.schedule_fields(),
    }


def _log(line: str) -> None:
    print(line, flush=True)


def run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from castbench.recipes import fitted_size
    from castbench.training import TrainConfig, train

    spec = spec_from_args(args.backbone, args)
    chosen = _resolved(args, spec.weights, spec.trainable)
    recipe = chosen.recipe
    if args.size is None and recipe.size is not None:  # an explicit --size is never raised
        record = spec.record
        spec = replace(spec, size=fitted_size(record.min_size, record.native_size, recipe.size))
    config = TrainConfig(spec=spec, batch_size=recipe.batch_size, **_run_fields(args, chosen))
    config.validate()
    out = args.out or f"results/train/{config.label()}"
    train(config, out, log=_log, argv=sys.argv[1:], resume=args.resume)
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from castbench.experiments import Settings, failed_rows
    from castbench.experiments import run_experiment as run

    chosen = _resolved(args)
    recipe = chosen.recipe
    settings = Settings(runs=args.runs, size=recipe.size, batch=recipe.batch_size,
                        backbone=args.backbone, head=args.head, augment_override=args.aug,
                        **_run_fields(args, chosen))  # fmt: skip
    out = args.out or f"results/experiments/{args.name}"
    rows = run(args.name, out, settings, resume=args.resume, only=args.only, log=_log)
    failed = failed_rows(rows)
    for row in failed:
        print(f"castbench: row {row['row']} failed: {row.get('error')}", file=sys.stderr)
    return 1 if failed else 0


def run_report(args: argparse.Namespace) -> int:
    from castbench.report import write_report

    written = write_report(args.folders, args.out)
    for kind, path in written.items():
        print(f"{kind:9s} {path}")
    return 0


__all__ = ["register", "UsageError"]
