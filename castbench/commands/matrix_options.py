"""Options and argument types the timing-matrix commands share (``castbench timing``,
``castbench peer``), and the table they end with."""

from __future__ import annotations

import argparse

from castbench.commands.options import option
from castbench.commands.output import format_table
from castbench.timing.config import MODES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def size_choice(text: str) -> int | None:
    return None if text == "native" else positive_int(text)


# The options that choose the timing matrix; every command that times one shares them.
MATRIX_OPTIONS = (
    option(
        "--backbones",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help="backbone names, or 'all' (default)",
    ),
    option(
        "--batch",
        nargs="+",
        type=positive_int,
        default=[2, 4, 8],
        metavar="N",
        help="batch sizes (default: 2 4 8)",
    ),
    option(
        "--mode",
        nargs="+",
        choices=MODES,
        default=None,
        help="train and/or infer (default: both; infer alone where a serving --runtime is given)",
    ),
    option(
        "--size",
        type=size_choice,
        default=None,
        metavar="native|N",
        help="input size in pixels (default: each backbone's native size)",
    ),
    option("--steps", type=positive_int, default=10, help="timed steps (default 10)"),
    option(
        "--warmup",
        type=positive_int,
        default=2,
        help="warm-up steps; the first one's extra time is compile_s (default 2)",
    ),
)


def summary_table(rows: list[dict]) -> str:
    headers = ["backbone", "size", "bs", "mode", "runtime", "median ms", "sd ms", "p90 ms",
               "img/s", "epoch s", "compile s", "status"]  # fmt: skip
    table = []
    for r in rows:
        ok = r["status"] == "ok"
        table.append([
            r["backbone"], r["input_size"], r["batch_size"], r["mode"], r.get("runtime") or "keras",
            _ms(r["step_s_median"]),
            _ms(r["step_s_std"]), _ms(r["step_s_p90"]), r["images_per_s"], r["epoch_s"],
            r["compile_s"], r["status"] if ok else f"{r['status']}: {r['error']}",
        ])  # fmt: skip
    return format_table(headers, table)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3
