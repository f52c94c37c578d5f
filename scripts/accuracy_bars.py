"""The accuracy figures castbench's from-scratch training is held to, read from results folders
and printed side by side with their goals (a Markdown table).

    python scripts/accuracy_bars.py \
        --precise-bn results/train/mobilenetv2-96-gap-none-bs8-full-synthetic-precise-bn \
        --scratch results/train/mobilenetv2-128-scratch-full-synthetic \
        --backbone results/experiments/backbone --threshold results/experiments/threshold

Every figure is at the decision threshold 0.5 unless it names others. A folder not given is
left out of the table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

MAJORITY_PCT = 63.4  # the defect share of the test split: a one-class model's accuracy
MARGIN_PTS = 15.0


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _at_half(run: Path) -> dict[str, float]:
    row = next(r for r in _rows(run / "metrics.csv") if float(r["threshold"]) == 0.5)
    return {k: float(v) for k, v in row.items()}


def precise_bn_bar(run: Path) -> tuple[str, str, str]:
    test = _at_half(run)
    training_mode = float(_rows(run / "history.csv")[-1]["accuracy"]) * 100
    both = test["tp"] + test["fp"] > 0 and test["tn"] + test["fn"] > 0
    gap = abs(test["accuracy_pct"] - training_mode)
    return (
        f"failing run + precise BN ({run.name})",
        "both classes; test within 5 pts of training-mode accuracy",
        f"both classes: {'yes' if both else 'no'} (predicted defect {test['tp'] + test['fp']:.0f}, "
        f"ok {test['tn'] + test['fn']:.0f}); test {test['accuracy_pct']:.2f} % vs training-mode "
        f"{training_mode:.2f} % (last epoch): {gap:.2f} pts",
    )


def scratch_bar(run: Path) -> tuple[str, str, str]:
    test = _at_half(run)
    return (
        f"MobileNetV2, scratch defaults, full set ({run.name})",
        "accuracy >= 85 %, recall >= 85 %",
        f"accuracy {test['accuracy_pct']:.2f} %, recall {test['recall_pct']:.2f} %, "
        f"precision {test['precision_pct']:.2f} %, F1 {test['f1']:.3f}",
    )


def backbone_bar(folder: Path) -> tuple[str, str, str]:
    runs: dict[str, list[float]] = {}
    for row in _rows(folder / "backbone.csv"):
        if row["status"] == "ok" and float(row["threshold"]) == 0.5:
            runs.setdefault(row["backbone"], []).append(float(row["accuracy_pct"]))
    means = {name: statistics.fmean(values) for name, values in runs.items()}
    beating = sorted(n for n, m in means.items() if m >= MAJORITY_PCT + MARGIN_PTS)
    repeated = sorted(n for n, v in runs.items() if len(v) >= 3)
    detail = ", ".join(
        f"{n} {means[n]:.1f}" + (f" ± {statistics.stdev(v):.1f} (n={len(v)})" if len(v) > 1 else "")
        for n, v in sorted(runs.items())
    )
    return (
        f"experiment backbone ({folder})",
        f">= 8 of 10 at >= {MAJORITY_PCT + MARGIN_PTS:.1f} %; >= 3 runs for >= 3 backbones",
        f"{len(beating)} of {len(means)} trained beat it; {len(repeated)} with >= 3 runs; "
        f"mean accuracy %: {detail}",
    )


def threshold_bar(folder: Path) -> tuple[str, str, str]:
    summary = _rows(folder / "threshold_summary.csv")
    runs = min(int(r["runs"]) for r in summary)
    sds = {float(r["threshold"]): float(r["accuracy_pct_sd"]) for r in summary}
    cells = ", ".join(
        f"{float(r['threshold']):.1f}: {float(r['accuracy_pct_mean']):.1f} ± "
        f"{float(r['accuracy_pct_sd']):.1f}"
        for r in summary
    )
    return (
        f"experiment threshold ({folder})",
        ">= 5 runs, sd > 0 at every threshold",
        f"{runs} runs; sd > 0 at {sum(sd > 0 for sd in sds.values())} of {len(sds)} thresholds; "
        f"accuracy % mean ± sd: {cells}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precise-bn", type=Path, help="the failing run with precise BN")
    parser.add_argument("--scratch", type=Path, help="MobileNetV2 on the scratch defaults")
    parser.add_argument("--backbone", type=Path, help="an experiment backbone folder")
    parser.add_argument("--threshold", type=Path, help="an experiment threshold folder")
    args = parser.parse_args()
    bars = [
        bar(folder)
        for bar, folder in (
            (precise_bn_bar, args.precise_bn),
            (scratch_bar, args.scratch),
            (backbone_bar, args.backbone),
            (threshold_bar, args.threshold),
        )
        if folder is not None
    ]
    print("| figure | goal | measured |\n|---|---|---|")
    for figure, goal, measured in bars:
        print(f"| {figure} | {goal} | {measured} |")


if __name__ == "__main__":
    main()
