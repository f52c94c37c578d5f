"""``castbench train``, ``castbench experiment`` and ``castbench report``: accuracy, recall,
precision and F1 next to time."""

from __future__ import annotations

import argparse
import sys

from castbench.commands.registry import add_model_arguments, spec_from_args
from castbench.errors import UsageError
from castbench.recipes import DEFAULT_PRECISE_BN_BATCHES, RECIPE_CHOICES, RECIPES, SCHEDULES


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_experiment(subparsers)
    _register_report(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
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
        "--out",
        default=None,
        help="results folder (default: results/train/<backbone>-<size>-<head>-<aug>-bs<N>-s<S>)",
    )
    train.set_defaults(func=run_train)


def _register_experiment(subparsers: argparse._SubParsersAction) -> None:
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
        "--runs",
        type=int,
        default=None,
        help="runs of every row, seeds SEED, SEED+1, ... (default: 10 for threshold, else 1)",
    )
    experiment.add_argument("--seed", type=int, default=0, help="base random seed (default: 0)")
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


def _register_report(subparsers: argparse._SubParsersAction) -> None:
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
    _add_recipe_arguments(parser)
    parser.add_argument(
        "--jit",
        choices=sorted(JIT_CHOICES),
        default="auto",
        help="XLA compilation of the train step (default auto; off compiles faster on a CPU)",
    )


JIT_CHOICES = {"auto": "auto", "on": True, "off": False}


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The schedule: a recipe, and flags that override single values of it."""
    seed, scratch = RECIPES["seed"], RECIPES["scratch"]
    parser.add_argument(
        "--recipe",
        choices=RECIPE_CHOICES,
        default="auto",
        help=f"auto (default): scratch from random weights, seed otherwise. {seed.summary()}; "
        f"{scratch.summary()}. The flags below override single values",
    )
    parser.add_argument("--batch", type=int, default=None, help="batch size (recipe's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (recipe's)")
    parser.add_argument("--lr", type=float, default=None, help="(peak) learning rate (recipe's)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=None, help="recipe's")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up epochs (recipe's)")
    parser.add_argument(
        "--weight-decay", type=float, default=None, help="decoupled weight decay, AdamW (recipe's)"
    )
    parser.add_argument(
        "--precise-bn",
        type=int,
        default=None,
        metavar="K",
        help="before each validation, recompute batch-norm statistics over K training batches; "
        f"0: off (default: {DEFAULT_PRECISE_BN_BATCHES} when the backbone trains from random "
        "weights, else off)",
    )


def _resolved(args: argparse.Namespace, weights: str = "none", trainable: str = "all"):
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
    )


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
    config = TrainConfig(
        spec=spec,
        data=args.data,
        augment=args.aug,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        seed=args.seed,
        learning_rate=recipe.learning_rate,
        jit_compile=JIT_CHOICES[args.jit],
        **chosen.schedule_fields(),
    )
    config.validate()
    out = args.out or f"results/train/{config.label()}"
    train(config, out, log=_log, argv=sys.argv[1:])
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from castbench.experiments import Settings, failed_rows
    from castbench.experiments import run_experiment as run

    chosen = _resolved(args)
    recipe = chosen.recipe
    settings = Settings(
        data=args.data,
        runs=args.runs,
        epochs=recipe.epochs,
        size=recipe.size,
        batch=recipe.batch_size,
        seed=args.seed,
        learning_rate=recipe.learning_rate,
        jit_compile=JIT_CHOICES[args.jit],
        **chosen.schedule_fields(),
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
