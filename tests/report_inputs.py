"""A tiny fake backbone experiment on disk, as ``castbench experiment backbone --runs R`` leaves
it: the table, and ``runs/<row>/predictions.csv`` for every run, with table rows computed from
those predictions. Each model is given by the test images it gets wrong in each run."""

from pathlib import Path

from castbench import experiments, metrics
from castbench.experiments import Settings
from castbench.files import atomic_write_text, csv_text

# 40 test images, the first 25 defects
LABELS = [1] * 25 + [0] * 15
ONE_CLASS = "one class"  # a model scoring every image 0.7: every image predicted a defect


def scores_for(wrong: set[int]) -> list[float]:
    if wrong == ONE_CLASS:
        return [0.7] * len(LABELS)
    right = [0.9 if label else 0.1 for label in LABELS]
    return [1 - s if i in wrong else s for i, s in enumerate(right)]


def write_backbone_experiment(folder: Path, models: dict[str, list], epoch_s: float = 10.0):
    """``models``: backbone -> per run, the set of image indices it gets wrong (or ONE_CLASS)."""
    rows = []
    for index, (name, runs) in enumerate(models.items()):
        for run, wrong in enumerate(runs, 1):
            key = f"{name.lower()}-run{run}"
            scores = scores_for(wrong)
            images = [f"test/{'def' if y else 'ok'}_front/cast_{i}.jpeg" for i, y in
                      enumerate(LABELS)]  # fmt: skip
            predictions = [{"path": p, "label": y, "score": s}
                           for p, y, s in zip(images, LABELS, scores, strict=True)]  # fmt: skip
            run_dir = Path("runs") / key
            atomic_write_text(folder / run_dir / "predictions.csv",
                              csv_text(predictions, ["path", "label", "score"]))  # fmt: skip
            measured = metrics.metrics_at(LABELS, scores, 0.5)
            rows.append({
                "experiment": "backbone", "row": key, "variant": name, "backbone": name,
                "input_size": 64, "head": "gap", "augment": "none", "batch_size": 4,
                "epochs": 1, "seed": run - 1, "run": run, "threshold": 0.5,
                **{k: measured[k] for k in (*metrics.METRIC_COLUMNS, *metrics.COUNT_COLUMNS)},
                "n_test": len(LABELS), "train_s": epoch_s * (index + 1) + run,
                "s_per_epoch": epoch_s * (index + 1) + run, "params_total": 1000 * (index + 1),
                "source": "castbench", "status": "ok", "run_dir": str(run_dir),
            })  # fmt: skip
    experiments.write_table(folder, experiments.get("backbone"), Settings(size=64, epochs=1), rows)
    return folder
