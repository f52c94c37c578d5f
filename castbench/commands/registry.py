"""``castbench backbones`` and ``castbench describe``: what the registry holds."""

from __future__ import annotations

import argparse

from castbench import backbones
from castbench.commands.options import JSON_TABLE, JSON_TEXT, add_command, option
from castbench.commands.output import format_table, print_json
from castbench.spec import HEADS, TRAINABLE, WEIGHT_CHOICES_HELP, ModelSpec

# Shared beyond MODEL_OPTIONS: export and timing take these too.
HEAD_OPTION = option("--head", choices=HEADS, default="gap")
WEIGHTS_OPTION = option("--weights", default="none", help=WEIGHT_CHOICES_HELP)
TRAINABLE_OPTION = option(
    "--trainable",
    choices=TRAINABLE,
    default="all",
    help="all: train the whole network (default, as the seed did); head: freeze the "
    "backbone and train the head alone",
)


# The options that choose a network; shared by every command that builds one.
MODEL_OPTIONS = (
    option(
        "--head",
        choices=HEADS,
        default="gap",
        help="gap: GAP + Dense(1); dense: GAP + Dense(1024) + Dropout + Dense(1)",
    ),
    option(
        "--size",
        type=int,
        default=None,
        help="input size in pixels (default: the backbone's native size)",
    ),
    option("--no-dense", action="store_true", help="dense head without Dense(1024)"),
    option("--no-dropout", action="store_true", help="dense head without Dropout"),
    WEIGHTS_OPTION,
    TRAINABLE_OPTION,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "backbones",
        "list the backbones castbench knows",
        "List the registry: name, family, native input size, preprocessing and "
        "parameter count (GAP head, native size; counting builds each model once).",
        [
            JSON_TABLE,
            option(
                "--no-params",
                action="store_true",
                help="skip building the models to count parameters (instant)",
            ),
        ],
        func=run_backbones,
    )
    add_command(
        subparsers,
        "describe",
        "parameters and GFLOPs of one backbone + head",
        "Build one backbone with its head and print total / trainable / "
        "non-trainable parameters, input size and forward GFLOPs per image (counted from "
        "the compiled graph).",
        [option("name", help="backbone name, case-insensitive"), *MODEL_OPTIONS, JSON_TEXT],
        func=run_describe,
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
