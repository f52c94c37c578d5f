"""``castbench merge`` (join shard folders) and ``castbench compare`` (BASE vs NEW runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from castbench.commands.options import add_command, option
from castbench.commands.output import print_json


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "merge",
        "join timing results folders (e.g. the shards of one sweep) into one",
        "Join timing results folders into a new one. Refuses folders from "
        "different environments (schema, backend, device, castbench version) unless "
        "--allow-mixed, and a configuration measured differently in two folders unless "
        "--prefer newest; lists the configurations of the announced matrix that no folder "
        "measured.",
        [
            option("sources", nargs="+", type=Path, metavar="DIR", help="results folders"),
            option("--out", type=Path, required=True, help="the new, merged folder"),
            option(
                "--prefer",
                choices=("newest",),
                default=None,
                help="settle a configuration measured in several folders by its newest row",
            ),
            option(
                "--allow-mixed",
                action="store_true",
                help="merge folders from different backends, devices or castbench versions (warns)",
            ),
        ],
        func=run_merge,
        needs_backend=False,
    )
    add_command(
        subparsers,
        "compare",
        "compare two timing runs: step-time ratios with a significance test",
        "Per configuration: median step time NEW/BASE and a two-sided test (Welch's t "
        "between per-process medians where both runs used --processes, else Mann-Whitney U "
        "on the step samples), Holm-adjusted over all configurations; a change counts as "
        "faster or slower only when significant. Rows pair only when every measured field "
        "matches (step kind, trainable, head, strategy, runtime, ...); the others are listed "
        "as found on one side only. BASE and NEW are results folders, their timing.json, or "
        "pytest-benchmark JSON files. Exit status 1 when a configuration is significantly "
        "slower by more than --fail-above percent.",
        [
            option("base", type=Path, metavar="BASE"),
            option("new", type=Path, metavar="NEW"),
            option(
                "--fail-above",
                type=_percent,
                default=None,
                metavar="PCT",
                help="exit 1 when a configuration is significantly slower by more than PCT percent",
            ),
            option("--alpha", type=float, default=0.05, help="significance level (default 0.05)"),
            option(
                "--across",
                nargs="+",
                default=(),
                metavar="FIELD",
                help="pair configurations that differ in these identity fields only, on purpose: "
                "e.g. --across framework (runtime, step and jit) sets a Keras run against a "
                "`castbench peer timm` run; --across step, the API step against the compiled",
            ),
            option("--json", action="store_true", help="print the comparison as JSON"),
        ],
        func=run_compare,
        needs_backend=False,
    )


def run_merge(args: argparse.Namespace) -> int:
    from castbench.merge import merge

    report = merge(args.sources, args.out, prefer=args.prefer, allow_mixed=args.allow_mixed)
    for line in report.warnings:
        print(f"castbench merge: warning: {line}", file=sys.stderr)
    if report.replaced:
        print(f"castbench merge: {len(report.replaced)} configuration(s) measured more than "
              "once; kept the newest row", file=sys.stderr)  # fmt: skip
    print(f"merged {report.rows} rows from {len(report.sources)} folders -> {report.out}")
    if report.gaps:
        print(f"{len(report.gaps)} configuration(s) of the matrix not measured in any folder:")
        for key in report.gaps:
            print(f"  {key}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from castbench.compare import compare, format_report, load

    across = tuple(args.across)
    report = compare(load(args.base, across), load(args.new, across), alpha=args.alpha,
                     fail_above=args.fail_above)  # fmt: skip
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
    return 1 if report["failed"] else 0
