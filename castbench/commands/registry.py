"""``castbench backbones`` and ``castbench describe``: what the registry holds."""

from __future__ import annotations

import argparse

from castbench import backbones
from castbench.commands.output import format_table, print_json
from castbench.spec import HEADS, TRAINABLE, WEIGHT_CHOICES_HELP, ModelSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser(
        "backbones",
        help="list the backbones castbench knows",
        description="List the registry: name, family, native input size, preprocessing and "
        "parameter count (GAP head, native size; counting builds each model once).",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--no-params",
        action="store_true",
        help="skip building the models to count parameters (instant)",
    )
    listing.set_defaults(func=run_backbones)

    describe = subparsers.add_parser(
        "describe",
        help="parameters and GFLOPs of one backbone + head",
        description="Build one backbone with its head and print total / trainable / "
        "non-trainable parameters, input size and forward GFLOPs per image (counted from "
        "the compiled graph).",
    )
    describe.add_argument("name", help="backbone name, case-insensitive")
    add_model_arguments(describe)
    describe.add_argument("--json", action="store_true", help="print JSON instead of text")
    describe.set_defaults(func=run_describe)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a network; shared by every command that builds one."""
    parser.add_argument(
        "--head",
        choices=HEADS,
        default="gap",
        help="gap: GAP + Dense(1); dense: GAP + Dense(1024) + Dropout + Dense(1)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="input size in pixels (default: the backbone's native size)",
    )
    parser.add_argument("--no-dense", action="store_true", help="dense head without Dense(1024)")
    parser.add_argument("--no-dropout", action="store_true", help="dense head without Dropout")
    parser.add_argument("--weights", default="none", help=WEIGHT_CHOICES_HELP)
    add_trainable_argument(parser)


def add_trainable_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trainable",
        choices=TRAINABLE,
        default="all",
        help="all: train the whole network (default, as the seed did); head: freeze the "
        "backbone and train the head alone",
    )


def spec_from_args(name: str, args: argparse.Namespace) -> ModelSpec:
    return ModelSpec(
        backbone=backbones.get(name).name,
        size=args.size,
        head=args.head,
        dense=not args.no_dense,
        dropout=0.0 if args.no_dropout else 0.5,
        weights=args.weights,
        trainable=args.trainable,
    )


def run_backbones(args: argparse.Namespace) -> int:
    from castbench.profile import describe_model

    rows = []
    for record in backbones.BACKBONES:
        row = {
            "name": record.name,
            "family": record.family,
            "native_size": record.native_size,
            "min_size": record.min_size,
            "preprocessing": record.preprocessing,
        }
        if not args.no_params:
            info = describe_model(ModelSpec(record.name), count_flops=False)
            row["params"] = info["params_total"]
        rows.append(row)
    if args.json:
        print_json(rows)
    else:
        headers = list(rows[0])
        print(format_table(headers, [[r[h] for h in headers] for r in rows]))
    return 0


def run_describe(args: argparse.Namespace) -> int:
    from castbench.profile import describe_model

    spec = spec_from_args(args.name, args)
    spec.validate()
    info = describe_model(spec)
    if args.json:
        print_json(info)
        return 0
    frozen = ", backbone frozen" if info["trainable"] == "head" else ""
    size = info["input_size"]
    print(f"{info['backbone']} + {info['head']} head at {size}x{size}{frozen}")
    print(f"  total params          {info['params_total']:>14,}")
    print(f"  trainable params      {info['params_trainable']:>14,}")
    print(f"  non-trainable params  {info['params_non_trainable']:>14,}")
    flops = info["gflops_per_image"]
    print(
        f"  forward GFLOPs/image  {flops:>14.3f}"
        if flops is not None
        else "  forward GFLOPs/image  not counted on this backend"
    )
    return 0
