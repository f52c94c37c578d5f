"""Do ``castbench timing`` and ``pytest bench`` report the same median step time?

Runs both tools, as a user would call them, for the same configurations, alternating in an
A-B-B-A order over several rounds so that a slow drift of the machine (other tenants, thermal
state) hits both alike. Each round is a complete run of the tool: model build, warm-up, timed
steps. Then, per configuration, it compares the median of all timed steps of each tool and
tests the two sets of samples with a Mann-Whitney U test.

Three placements:

* ``--placement process`` (default): every round of either tool is a fresh Python process,
  ``castbench timing`` with its default worker isolation. Differences between processes (memory
  layout, thread placement) are part of what is compared.
* ``--placement shared``: both tools run inside this one process (``castbench timing --isolate
  none`` and ``pytest.main``), which removes process-to-process variation.
* ``--placement interleaved``: one pytest-benchmark session (``interleaved_agreement.py``)
  in which every case is timed by ``castbench timing``'s ``measure`` and by pytest-benchmark on
  the same model within seconds, alternating which goes first, for ``--rounds`` rounds. This
  leaves only the difference between the two ways of timing the step: the machine's slow
  drift, which separates whole runs on a shared host, hits both alike.

    python scripts/tool_agreement.py --backbones mobilenetv2 --batches 2 4 --size 64 \
        --rounds 4 --steps 30 --out results/agreement/process

Writes OUT/rounds/ (every run's own results), OUT/agreement.csv and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from castbench.compare import mann_whitney_u
from castbench.files import atomic_write_text, csv_text
from castbench.identity import ConfigIdentity
from castbench.timing.sources import load_rows

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("timing", "bench")
TOLERANCE = 0.10  # the agreement asked of the two tools: medians within 10 %
Samples = dict[ConfigIdentity, dict[str, list[list[float]]]]  # configuration -> tool -> runs' steps


def timing_argv(args: argparse.Namespace, out: Path) -> list[str]:
    argv = ["timing", "--backbones", *args.backbones, "--batch", *map(str, args.batches),
            "--size", str(args.size), "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--out", str(out), "--no-plots"]  # fmt: skip
    return argv + (["--isolate", "none"] if args.placement == "shared" else [])


def bench_argv(args: argparse.Namespace, out: Path, tests: Path = REPO / "bench") -> list[str]:
    return [str(tests), "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
            "-p", "castbench.pytest_plugin", "--castbench-backbones", ",".join(args.backbones),
            "--castbench-batches", ",".join(map(str, args.batches)),
            "--castbench-size", str(args.size), "--castbench-steps", str(args.steps),
            "--castbench-warmup", str(args.warmup), "--benchmark-json", str(out)]  # fmt: skip


def run_tool(tool: str, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """One complete run of ``tool``; its rows, read back from what it wrote."""
    argv = timing_argv(args, out) if tool == "timing" else bench_argv(args, out)
    if args.placement == "shared":
        if tool == "timing":
            from castbench.cli import main as castbench_main

            status = castbench_main(argv)
        else:
            import pytest

            status = int(pytest.main(argv))
        if status != 0:
            raise SystemExit(f"tool_agreement: {tool} exited with status {status}")
    else:
        run_module("castbench.cli" if tool == "timing" else "pytest", argv)
    return [row for row in load_rows(out) if row.get("status") == "ok"]


def run_module(module: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    """``python -m module argv`` in a fresh process; stop here if it fails."""
    status = subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, env=env).returncode
    if status != 0:
        raise SystemExit(f"tool_agreement: {module} exited with status {status}")


def round_order(rounds: int) -> list[str]:
    """A-B-B-A-A-B...: each tool goes first as often as the other, cancelling linear drift."""
    order: list[str] = []
    for index in range(rounds):
        order += list(TOOLS) if index % 2 == 0 else list(reversed(TOOLS))
    return order


def summarize(samples: Samples) -> list[dict[str, Any]]:
    rows = []
    for ident, by_tool in samples.items():
        pooled = {tool: [s for run in by_tool[tool] for s in run] for tool in TOOLS}
        medians = {tool: statistics.median(pooled[tool]) for tool in TOOLS}
        ratio = medians["bench"] / medians["timing"]
        _, p_value = mann_whitney_u(pooled["timing"], pooled["bench"])
        per_round = {
            tool: " ".join(f"{statistics.median(run) * 1e3:.2f}" for run in by_tool[tool])
            for tool in TOOLS
        }
        rows.append({
            **asdict(ident),
            "steps_per_tool": len(pooled["timing"]),
            "timing_median_ms": round(medians["timing"] * 1e3, 3),
            "bench_median_ms": round(medians["bench"] * 1e3, 3),
            "bench_over_timing": round(ratio, 4),
            "mann_whitney_p": round(p_value, 4),
            "within_10pct": abs(ratio - 1) <= TOLERANCE,
            "timing_round_medians_ms": per_round["timing"],
            "bench_round_medians_ms": per_round["bench"],
        })  # fmt: skip
    return rows


def add_run(samples: Samples, ident: ConfigIdentity, tool: str, steps: list[float]) -> None:
    samples.setdefault(ident, {t: [] for t in TOOLS})[tool].append([float(s) for s in steps])


def alternate_tools(args: argparse.Namespace) -> Samples:
    """Whole runs of each tool, alternating."""
    samples: Samples = {}
    counts = dict.fromkeys(TOOLS, 0)
    (args.out / "rounds").mkdir(parents=True, exist_ok=True)  # pytest-benchmark makes no folders
    for tool in round_order(args.rounds):
        counts[tool] += 1
        name = f"{tool}-{counts[tool]}"
        out = args.out / "rounds" / (name + (".json" if tool == "bench" else ""))
        print(f"tool_agreement: {name} -> {out}", file=sys.stderr, flush=True)
        for row in run_tool(tool, args, out):
            add_run(samples, ConfigIdentity.from_row(row), tool, row["samples_s"])
    return samples


def interleave_in_one_session(args: argparse.Namespace) -> Samples:
    """Both timings of every case on the same model, seconds apart (interleaved_agreement.py)."""
    out = args.out / "interleaved.json"
    args.out.mkdir(parents=True, exist_ok=True)
    argv = bench_argv(args, out, tests=Path(__file__).with_name("interleaved_agreement.py"))
    run_module("pytest", argv, env={**os.environ, "CASTBENCH_AGREEMENT_ROUNDS": str(args.rounds)})
    samples: Samples = {}
    for bench in json.loads(out.read_text(encoding="utf-8"))["benchmarks"]:
        extra = bench["extra_info"]
        ident = ConfigIdentity.from_row(extra)
        add_run(samples, ident, "timing", extra["engine_samples_s"])
        add_run(samples, ident, "bench", bench["stats"]["data"])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["mobilenetv2"])
    parser.add_argument("--batches", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="runs of each tool")
    parser.add_argument("--placement", choices=("process", "shared", "interleaved"),
                        default="process")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("results/agreement"))
    args = parser.parse_args()
    if args.placement == "shared":
        from castbench.runtime import start_quietly

        start_quietly()
    if args.placement == "interleaved":
        samples = interleave_in_one_session(args)
    else:
        samples = alternate_tools(args)

    rows = summarize(samples)
    atomic_write_text(args.out / "agreement.csv", csv_text(rows))
    print(f"{args.placement} placement, {args.rounds} runs of each tool, {args.steps} steps each")
    for row in rows:
        print(f"{row['backbone']} {row['input_size']}px bs {row['batch_size']} {row['mode']}: "
              f"timing {row['timing_median_ms']:.2f} ms, bench {row['bench_median_ms']:.2f} ms, "
              f"ratio {row['bench_over_timing']:.3f}, p={row['mann_whitney_p']:.3f}, "
              f"rounds timing [{row['timing_round_medians_ms']}] "
              f"bench [{row['bench_round_medians_ms']}]")  # fmt: skip


if __name__ == "__main__":
    main()
