"""``castbench train``, ``castbench experiment`` and ``castbench report``: accuracy, recall,
precision and F1 next to time."""

from __future__ import annotations

import argparse
import sys

from castbench.commands.registry import add_model_arguments, spec_from_args
from castbench.errors import UsageError
from castbench.training import DEFAULT_BATCH, DEFAULT_EPOCHS, DEFAULT_LR


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train one backbone + head and score it on the test split",
        description="Train with a validation split, keep the best epoch by validation loss "
        "(.weights.h5), evaluate on the test split and write metrics per threshold 0.1-0.9 "
        "(CSV + JSON), the confusion matrix at 0.5, training curves and timings.",
    )
    train.add_argument("--backbone", required=True, help="backbone name, case-insensitive")
    add_model_arguments(train)
    _add_data_arguments(train)
    train.add_argument("--aug", default="none", help="augmentation preset (default: none)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument(
        "--lr", type=float, default=DEFAULT_LR, help=f"Adam learning rate ({DEFAULT_LR:g})"
    )
    train.add_argument(
        "--out",
        default=None,
        help="results folder (default: results/train/<backbone>-<size>-<head>-<aug>-bs<N>-s<S>)",
    )
    train.set_defaults(func=run_train)

    experiment = subparsers.add_parser(
        "experiment",
        help="run one of the seed study's accuracy experiments",
        description="Train every configuration of a seed experiment and write one tidy table "
        "(CSV + JSON): architecture (Part 1), augmentation (Part 2), backbone (Part 3), "
        "threshold (Part 5, repeated runs). Rows are written as they finish; --resume skips "
        "finished ones.",
    )
    from castbench.experiments import EXPERIMENTS

    experiment.add_argument("name", choices=list(EXPERIMENTS), help="which experiment")
    _add_data_arguments(experiment)
    experiment.add_argument(
        "--size",
        type=int,
        default=None,
        help="input size for every row, raised to each backbone's minimum "
        "(default: each backbone's native size)",
    )
    experiment.add_argument(
        "--runs", type=int, default=None, help="repeated runs (threshold only; default 10)"
    )
    experiment.add_argument("--seed", type=int, default=0, help="base random seed (default: 0)")
    experiment.add_argument(
        "--lr", type=float, default=DEFAULT_LR, help=f"Adam learning rate ({DEFAULT_LR:g})"
    )
    experiment.add_argument(
        "--only", action="append", default=None, help="train only these rows (comma-separated)"
    )
    experiment.add_argument(
        "--out", default=None, help="results folder (default: results/experiments/<name>)"
    )
    experiment.add_argument(
        "--resume", action="store_true", help="keep finished rows in --out, train the rest"
    )
    experiment.set_defaults(func=run_experiment)

    report = subparsers.add_parser(
        "report",
        help="Markdown + HTML report from results folders",
        description="Write report.md, report.html and figures/ from any mix of experiment "
        "folders, timing folders (timing.csv), training runs and the seed's reference "
        "numbers (results/seed).",
    )
    report.add_argument("folders", nargs="+", metavar="DIR", help="results folders")
    report.add_argument("--out", default="report", help="output folder (default: report)")
    report.set_defaults(func=run_report)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=None,
        help="casting data root (train/ and test/ with def_front/ and ok_front/); "
        "default: the built-in synthetic stand-in",
    )
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help=f"batch size (default {DEFAULT_BATCH})"
    )
    parser.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})"
    )
    parser.add_argument(
        "--jit",
        choices=sorted(JIT_CHOICES),
        default="auto",
        help="XLA compilation of the train step (default auto; off compiles faster on a CPU)",
    )


JIT_CHOICES = {"auto": "auto", "on": True, "off": False}


def _log(line: str) -> None:
    print(line, flush=True)


def run_train(args: argparse.Namespace) -> int:
    from castbench.training import TrainConfig, train

    config = TrainConfig(
        spec=spec_from_args(args.backbone, args),
        data=args.data,
        augment=args.aug,
        batch_size=args.batch,
        epochs=args.epochs,
        seed=args.seed,
        learning_rate=args.lr,
        jit_compile=JIT_CHOICES[args.jit],
    )
    config.validate()
    out = args.out or f"results/train/{config.label()}"
    train(config, out, log=_log, argv=sys.argv[1:])
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from castbench.experiments import Settings, failed_rows
    from castbench.experiments import run_experiment as run

    settings = Settings(
        data=args.data,
        runs=args.runs,
        epochs=args.epochs,
        size=args.size,
        batch=args.batch,
        seed=args.seed,
        learning_rate=args.lr,
        jit_compile=JIT_CHOICES[args.jit],
    )
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
