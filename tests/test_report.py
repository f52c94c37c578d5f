"""castbench report from tiny hand-made inputs: experiment tables, a timing folder, the seed."""

import csv
import json
from pathlib import Path

import pytest

from castbench import experiments, metrics
from castbench.cli import main
from castbench.experiments import Settings
from castbench.report.figures import pareto_front

SEED = Path(__file__).resolve().parents[1] / "results" / "seed"


def _rows(name, keys, thresholds=(0.5,), runs=1):
    out = []
    for run in range(1, runs + 1):
        for i, key in enumerate(keys):
            for t in thresholds:
                labels = [1, 1, 1, 0, 0, 1]
                scores = [0.9, 0.2 + 0.1 * i + 0.05 * run, 0.7, 0.1, 0.55 - 0.1 * i, 0.8]
                measured = metrics.metrics_at(labels, scores, t)
                out.append({
                    "experiment": name, "row": key.lower() if runs == 1 else f"run{run:02d}",
                    "variant": key, "backbone": key, "input_size": 64, "head": "gap",
                    "augment": "none", "batch_size": 4, "epochs": 1, "seed": run - 1,
                    "run": run, "threshold": t,
                    **{k: measured[k] for k in (*metrics.METRIC_COLUMNS, *metrics.COUNT_COLUMNS)},
                    "n_test": 6, "train_s": 10.0 + 5 * i, "s_per_epoch": 10.0 + 5 * i,
                    "epoch_s_first": 10.0 + 5 * i, "params_total": 1000 * (i + 1),
                    "source": "castbench", "status": "ok",
                })  # fmt: skip
    return out


@pytest.fixture
def inputs(tmp_path):
    backbone_dir = tmp_path / "exp" / "backbone"
    backbone_dir.mkdir(parents=True)
    keys = ["VGG16", "ResNet50", "MobileNetV2"]
    experiments.write_table(
        backbone_dir,
        experiments.get("backbone"),
        Settings(size=64, epochs=1),
        _rows("backbone", keys),
    )
    threshold_dir = tmp_path / "exp" / "threshold"
    threshold_dir.mkdir()
    experiments.write_table(
        threshold_dir,
        experiments.get("threshold"),
        Settings(runs=3, size=64, epochs=1),
        _rows("threshold", ["EfficientNetB4"], thresholds=metrics.SEED_THRESHOLDS, runs=3),
    )
    timing_dir = tmp_path / "timing"
    timing_dir.mkdir()
    columns = "backbone,input_size,batch_size,mode,status,step_s_median,step_s_mean,step_s_std"
    columns = columns.split(",") + ["images_per_s", "steps_per_epoch", "epoch_s"]
    with (timing_dir / "timing.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i, name in enumerate(keys):
            for bs in (2, 4, 8):
                step = 0.05 * (i + 1) * bs**0.8
                writer.writerow([name, 64, bs, "train", "ok", step, step, 0.001, bs / step,
                                 -(-531 // bs), step * -(-531 // bs)])  # fmt: skip
                writer.writerow([name, 64, bs, "infer", "ok", step / 3, step / 3, 0.001,
                                 3 * bs / step, "", ""])  # fmt: skip
        writer.writerow(["VGG16", 64, 16, "train", "oom", "", "", "", "", "", ""])
    (timing_dir / "run.json").write_text(json.dumps({"environment": {"device": "cpu:Tiny"}}))
    return tmp_path


def test_report_renders_everything(inputs, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["report", str(inputs / "exp"), str(inputs / "timing"), str(SEED), "--out", str(out)]
    assert main(args) == 0
    assert "report.md" in capsys.readouterr().out
    for name in ("report.md", "report.html"):
        assert (out / name).stat().st_size > 500
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"backbones.png", "pareto_epoch.png", "pareto_step.png", "thresholds.png",
            "confusion.png", "architecture.png", "augmentation.png"} <= figures  # fmt: skip
    assert all((out / "figures" / f).stat().st_size > 5000 for f in figures)
    markdown = (out / "report.md").read_text()
    for figure in figures:
        assert f"figures/{figure}" in markdown
    assert "seed (slides)" in markdown and "castbench, 64 px, 1 ep" in markdown
    # the seed's Part 3 accuracy for VGG16 sits in the same table row as the new run
    vgg = next(line for line in markdown.splitlines() if line.startswith("| VGG16 | VGG16 | 64"))
    assert "99.02" in vgg
    assert "98.462 ± 2.14" in markdown  # the seed's Part 5 mean ± sample sd
    assert "nan" not in markdown.lower()
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and '<img src="figures/thresholds.png"' in html


def test_report_of_a_timing_folder_alone(inputs, tmp_path):
    out = tmp_path / "only-timing"
    assert main(["report", str(inputs / "timing"), "--out", str(out)]) == 0
    assert (out / "figures" / "backbones.png").is_file()
    assert "median train step" in (out / "report.md").read_text()


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_bad_folder_is_one_line_exit_2(make, tmp_path, capsys):
    folder = tmp_path / "nothing"
    if make == "empty":
        folder.mkdir()
    assert main(["report", str(folder), "--out", str(tmp_path / "r")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("castbench: error:")


def test_pareto_front():
    points = [("a", 1.0, 90.0), ("b", 2.0, 95.0), ("c", 3.0, 94.0), ("d", 0.5, 80.0),
              ("e", 2.0, 93.0), ("f", 4.0, 99.0)]  # fmt: skip
    assert [p[0] for p in pareto_front(points)] == ["d", "a", "b", "f"]


def test_report_cells_significance_and_one_class_flag(tmp_path):
    from report_inputs import ONE_CLASS, write_backbone_experiment

    strong, weak = {0, 1}, set(range(2, 12))
    write_backbone_experiment(tmp_path / "backbone", {
        "Strong": [strong, strong], "Weak": [weak, weak], "Close": [{0, 1, 2}, {0, 1}],
        "Stuck": [ONE_CLASS, ONE_CLASS],
    })  # fmt: skip
    # an older run wrote absolute image paths: the same images all the same
    older = tmp_path / "backbone" / "runs" / "weak-run1" / "predictions.csv"
    older.write_text(older.read_text().replace("\ntest/", "\n/data/casting/test/"))
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "backbone"), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    # Close: 37/40 and 38/40 correct; sd = 2.5/sqrt(2), t(0.975, 1) = 12.706 -> +-15.88,
    # clipped to 100 %
    assert "93.75 ± 1.77 [77.87, 100.00]" in markdown
    # Strong against Weak, pooled over 2 paired runs: b = 2 x 10, c = 2 x 2; exact two-sided
    # p = 2 * sum(C(24, k), k <= 4) / 2^24 = 0.00154, each run alone 0.0386 (< 0.05)
    pair = next(line for line in markdown.splitlines() if line.startswith("| Strong | Weak |"))
    cells = [c.strip() for c in pair.strip("|").split("|")]
    assert cells[2:7] == ["2", "40", "20", "4", "0.00154"]
    assert cells[7].endswith("*") and cells[8] == "2/2" and cells[9].startswith("+20.00 [")
    close = next(line for line in markdown.splitlines() if line.startswith("| Strong | Close |"))
    assert "| 1 | 0 | 1 | 1 |" in close and "*" not in close  # one discordant image: p = 1
    assert "Holm" in markdown and "pooled" in markdown
    assert "not compared" not in markdown
    # the one-class model is named in a warning and flagged in its table row
    assert "backbone / Stuck (one class: 2/2 runs)" in markdown
    stuck = next(line for line in markdown.splitlines() if line.startswith("| Stuck |"))
    assert stuck.rstrip(" |").endswith("one class: 2/2 runs")


def test_unreadable_or_mismatched_predictions_are_usage_errors(tmp_path):
    from report_inputs import write_backbone_experiment

    from castbench.errors import UsageError
    from castbench.report import discover
    from castbench.report.cells import table_cells
    from castbench.report.significance import pairwise

    folder = write_backbone_experiment(tmp_path / "b", {"A": [{0}], "B": [{1}]})
    table = discover([folder]).experiments[0]
    assert [p.b_count for p in pairwise(table, table_cells(table)).pairs] == [1]
    predictions = folder / "runs" / "b-run1" / "predictions.csv"
    text = predictions.read_text()
    predictions.write_text(text.replace(",1,", ",0,", 1))  # B's first defect now labelled ok
    with pytest.raises(UsageError, match="disagree on the label"):
        pairwise(table, table_cells(table))
    predictions.write_text(text.replace(",1,", ",yes,", 1))
    with pytest.raises(UsageError, match="line 2: expected path, label 0/1 and a score"):
        pairwise(table, table_cells(table))
    predictions.unlink()
    result = pairwise(table, table_cells(table))
    assert not result.pairs and result.notes == ["B: no predictions.csv under its runs; left out."]
