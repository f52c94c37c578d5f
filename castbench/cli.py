"""castbench's command line: parse, call the library, print. Each command group lives in
``castbench.commands.<group>`` and registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

from castbench import __version__
from castbench.errors import CastbenchError
from castbench.runtime import start_quietly

# Modules under castbench.commands, each with ``register(subparsers)``.
COMMAND_MODULES = ("registry", "timing", "plot", "serving", "data", "training", "runs",
                   "peer")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="castbench",
        description="Benchmark and profile image classification backbones: what each costs to "
        "train and serve on this machine, and what it buys in accuracy, recall and F1.",
    )
    parser.add_argument("--version", action="version", version=f"castbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"castbench.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in results metadata
    try:
        if getattr(args, "needs_backend", True):  # plots, merges, data checks start faster
            start_quietly()
        return int(args.func(args) or 0)
    except CastbenchError as exc:
        print(f"castbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("castbench: interrupted; finished results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
