"""Train one backbone + head on the casting set and evaluate it on the test split.

The run follows the seed study: Adam + binary cross-entropy, a validation split taken from the
training images, the best epoch by validation loss kept (``ModelCheckpoint(save_best_only=True)``
into a ``.weights.h5`` file: HDF5, no pickle), restored, then scored on the test split at every
decision threshold 0.1–0.9.

A results folder holds:

- ``metrics.csv`` / ``metrics.json``   counts and metrics per threshold
- ``confusion.json`` / ``confusion.csv`` the confusion matrix at 0.5
- ``history.csv`` / ``curves.png``      training curves, with each epoch's wall time
- ``predictions.csv``                   test image, label and defect score
- ``best.weights.h5``                   the restored best weights
- ``run.json``                          configuration, data counts, timings, environment
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from castbench import metrics
from castbench.errors import UsageError
from castbench.files import atomic_write_text, csv_text
from castbench.spec import ModelSpec

SCHEMA = "castbench.train"
SCHEMA_VERSION = 1
WEIGHTS_FILE = "best.weights.h5"
DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 4
DEFAULT_LR = 1e-4
DEFAULT_VALIDATION = 0.2

Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides one training run (the model, the data, the schedule)."""

    spec: ModelSpec
    data: str | None = None  # None: the built-in small synthetic set
    augment: str = "none"
    batch_size: int = DEFAULT_BATCH
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    learning_rate: float = DEFAULT_LR
    validation_fraction: float = DEFAULT_VALIDATION
    thresholds: tuple[float, ...] = metrics.SWEEP_THRESHOLDS
    cache_dir: str | None = None  # decoded-image cache for the input pipeline
    jit_compile: bool | str = "auto"  # XLA; "auto" lets Keras decide

    def validate(self) -> None:
        """Reject bad input before TensorFlow starts or any data is read."""
        if self.batch_size <= 0:
            raise UsageError(f"batch size must be a positive integer, got {self.batch_size}")
        if self.epochs <= 0:
            raise UsageError(f"epochs must be a positive integer, got {self.epochs}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UsageError(f"learning rate must be a positive number, got {self.learning_rate}")
        if not 0 < self.validation_fraction < 1:
            raise UsageError(
                f"validation fraction must lie between 0 and 1, got {self.validation_fraction}"
            )
        for threshold in self.thresholds:
            if not 0 <= threshold <= 1:
                raise UsageError(f"thresholds must lie in [0, 1], got {threshold}")
        presets = augment_names()
        if self.augment not in presets:
            raise UsageError(
                f"unknown augmentation preset {self.augment!r}; choose from: {', '.join(presets)}"
            )
        if self.data is not None:
            path = Path(self.data)
            if not path.is_dir():
                raise UsageError(f"data folder not found: {path}")
        self.spec.validate()

    def label(self) -> str:
        """A short name for folders: ``mobilenetv2-224-gap-none-bs4-s0`` (``-frozen`` after the
        head when only the head trains)."""
        spec = self.spec
        frozen = "-frozen" if spec.backbone_frozen else ""
        return (
            f"{spec.record.key}-{spec.input_size}-{spec.head_label}{frozen}-{self.augment}"
            f"-bs{self.batch_size}-s{self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["spec"] = asdict(self.spec)
        out["spec"]["input_size"] = self.spec.input_size
        out["spec"]["head_label"] = self.spec.head_label
        out["thresholds"] = list(self.thresholds)
        return out


@dataclass
class TrainResult:
    """What one run produced; the same numbers as the files in ``out_dir``."""

    out_dir: Path
    config: TrainConfig
    sweep: list[dict[str, Any]]
    confusion: metrics.Confusion  # at 0.5
    history: list[dict[str, Any]]
    timing: dict[str, Any]
    best_epoch: int | None
    params_total: int
    counts: dict[str, int] = field(default_factory=dict)

    def at(self, threshold: float) -> dict[str, Any]:
        for row in self.sweep:
            if math.isclose(row["threshold"], threshold):
                return row
        raise KeyError(threshold)


def augment_names() -> list[str]:
    from castbench import augment

    return list(augment.preset_names())


def resolve_data(data: str | os.PathLike | None, log: Log = _print) -> Path:
    """The data root: the user's folder, or the built-in small synthetic set."""
    if data is not None:
        path = Path(data)
        if not path.is_dir():
            raise UsageError(f"data folder not found: {path}")
        return path
    from castbench.data.synth import default_synthetic_set

    root = Path(default_synthetic_set())
    log(f"no --data given: using the synthetic stand-in set at {root}")
    return root


# ---------------------------------------------------------------------------------------------
# files


def json_text(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=str, allow_nan=False) + "\n"


def environment(argv: list[str] | None = None) -> dict[str, Any]:
    try:
        from castbench.environment import collect

        return collect(argv)
    except Exception as exc:  # metadata must never sink a finished run
        import platform

        return {"python": platform.python_version(), "environment_error": str(exc)}


# ---------------------------------------------------------------------------------------------
# training


def _epoch_logger(log: Log, epochs: int, times: list[float]):
    import keras

    class EpochLog(keras.callbacks.Callback):
        """One line per epoch, and the wall time of each epoch (first one includes tracing)."""

        def __init__(self) -> None:
            super().__init__()
            self.best = math.inf
            self.started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            times.append(seconds)
            logs = logs or {}
            val_loss = logs.get("val_loss", math.inf)
            mark = ""
            if val_loss < self.best:
                self.best = val_loss
                mark = "  * best, saved"
            parts = [f"epoch {epoch + 1}/{epochs}"]
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_recall"):
                if key in logs:
                    parts.append(f"{key} {float(logs[key]):.4f}")
            parts.append(f"{seconds:.1f} s")
            log("  ".join(parts) + mark)

    return EpochLog()


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    log: Log = _print,
    argv: list[str] | None = None,
) -> TrainResult:
    """Train, keep the best epoch by validation loss, evaluate on the test split, write files."""
    config.validate()
    out = Path(out_dir)
    root = resolve_data(config.data, log)
    if config.data is None:
        config = replace(config, data=str(root))

    from castbench.data import load_casting, split_validation

    data = load_casting(root)
    train_samples, val_samples = split_validation(
        data.train, fraction=config.validation_fraction, seed=config.seed
    )
    for name, samples in (("training", train_samples), ("validation", val_samples)):
        if not samples:
            raise UsageError(f"{root}: the {name} split is empty; the data set is too small")
    if not data.test:
        raise UsageError(f"{root}: no test images")
    test_samples = list(data.test)
    if len({s.label for s in train_samples}) < 2:
        log("warning: the training split holds one class only")

    import keras

    from castbench.data.pipeline import make_dataset
    from castbench.models import build_model, compile_for_training, count_params

    out.mkdir(parents=True, exist_ok=True)
    spec = config.spec
    size = spec.input_size
    keras.utils.set_random_seed(config.seed)
    preprocess = spec.record.preprocess_fn()
    common = {"preprocess": preprocess, "cache_dir": config.cache_dir}
    train_ds = make_dataset(
        train_samples,
        size,
        config.batch_size,
        augment=config.augment,
        shuffle=True,
        seed=config.seed,
        **common,
    )
    val_ds = make_dataset(val_samples, size, config.batch_size, **common)
    test_ds = make_dataset(test_samples, size, config.batch_size, **common)

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = build_model(spec)
    compile_for_training(
        model,
        learning_rate=config.learning_rate,
        jit_compile=config.jit_compile,
        metrics=(
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.Precision(name="precision"),
        ),
    )
    params = count_params(model)
    weights_path = out / WEIGHTS_FILE
    weights_path.unlink(missing_ok=True)
    epoch_times: list[float] = []
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(weights_path),
        monitor="val_loss",
        mode="min",
        save_best_only=True,
        save_weights_only=True,
        verbose=0,
    )
    log(
        f"training {spec.record.name} + {spec.head_label} head at {size}x{size}"
        f"{', backbone frozen' if spec.backbone_frozen else ''}, "
        f"augment {config.augment}, batch {config.batch_size}, {config.epochs} epoch(s): "
        f"{len(train_samples)} train / {len(val_samples)} validation / {len(test_samples)} test "
        f"images from {root}"
    )
    started = time.perf_counter()
    fitted = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=0,
        callbacks=[checkpoint, _epoch_logger(log, config.epochs, epoch_times)],
    )
    train_s = time.perf_counter() - started

    history = _history_rows(fitted.history, epoch_times)
    best_epoch = _best_epoch(history)
    if weights_path.is_file():
        model.load_weights(str(weights_path))
    else:  # no finite validation loss: keep the last weights, and say so
        log("warning: validation loss never improved on infinity; keeping the last epoch")
        model.save_weights(str(weights_path))
        best_epoch = None

    started = time.perf_counter()
    labels, scores = predict_scores(model, test_ds)
    predict_s = time.perf_counter() - started
    expected = [s.label for s in test_samples]
    if labels != expected:  # the pipeline must keep order when it does not shuffle
        raise RuntimeError("test predictions came back in another order than the test files")

    if metrics.scores_indistinct(scores):
        log(
            f"warning: every test score is {statistics.fmean(scores):.4f} to within "
            f"{metrics.INDISTINCT_SCORE_SPREAD:g}: the model tells no image from another, so the "
            "metrics below only restate the class shares. From random weights this is common "
            "early on (batch normalisation's moving statistics lag far behind the weights); "
            "train longer, on more images, or from --weights imagenet"
        )
    sweep = _sweep_with_notes(labels, scores, config.thresholds, log)
    confusion = metrics.confusion_counts(labels, scores, 0.5)
    timing = _timing(train_s, epoch_times, predict_s, len(test_samples))
    counts = {
        "n_train": len(train_samples),
        "n_validation": len(val_samples),
        "n_test": len(test_samples),
        "n_test_defect": sum(expected),
        "n_skipped": len(data.skipped),
    }
    result = TrainResult(
        out_dir=out,
        config=config,
        sweep=sweep,
        confusion=confusion,
        history=history,
        timing=timing,
        best_epoch=best_epoch,
        params_total=params.total,
        counts=counts,
    )
    write_results(result, test_samples, scores, argv=argv)
    at_half = result.at(0.5) if any(math.isclose(t, 0.5) for t in config.thresholds) else None
    if at_half:
        log(
            f"test at 0.5: accuracy {at_half['accuracy_pct']:.2f} %, recall "
            f"{at_half['recall_pct']:.2f} %, precision {at_half['precision_pct']:.2f} %, "
            f"F1 {at_half['f1']:.3f} (tp {confusion.tp}, fp {confusion.fp}, tn {confusion.tn}, "
            f"fn {confusion.fn}); best epoch {best_epoch}; train {train_s:.1f} s"
        )
    log(f"results in {out}")
    del model
    keras.backend.clear_session()
    return result


def _sweep_with_notes(labels, scores, thresholds, log: Log) -> list[dict[str, Any]]:
    """The threshold sweep, with undefined metrics (reported as 0.0) named once per kind."""
    notes: dict[str, list[float]] = {}
    rows = []
    for threshold in thresholds:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", metrics.MetricWarning)
            rows.append(metrics.metrics_at(labels, scores, threshold))
        for warning in caught:
            if issubclass(warning.category, metrics.MetricWarning):
                notes.setdefault(str(warning.message), []).append(threshold)
    for message, where in notes.items():
        log(f"note: {message} at threshold {', '.join(f'{t:g}' for t in where)}")
    return rows


def predict_scores(model, dataset) -> tuple[list[int], list[float]]:
    """Labels and defect scores, batch by batch, in the dataset's order."""
    labels: list[int] = []
    scores: list[float] = []
    for images, batch_labels in dataset:
        predicted = model.predict_on_batch(images)
        scores.extend(float(v) for v in predicted.reshape(-1))
        labels.extend(int(round(float(v))) for v in batch_labels.numpy().reshape(-1))
    return labels, scores


def _history_rows(history: dict[str, list], epoch_times: list[float]) -> list[dict[str, Any]]:
    rows = []
    for index, seconds in enumerate(epoch_times):
        row: dict[str, Any] = {"epoch": index + 1}
        for key, values in history.items():
            if index < len(values):
                value = float(values[index])
                row[key] = value if math.isfinite(value) else None
        row["epoch_s"] = seconds
        rows.append(row)
    return rows


def _best_epoch(history: list[dict[str, Any]]) -> int | None:
    finite = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
    return min(finite)[1] if finite else None


def _timing(
    train_s: float, epoch_times: list[float], predict_s: float, n_test: int
) -> dict[str, Any]:
    later = epoch_times[1:]
    return {
        "train_s": train_s,
        "epochs": len(epoch_times),
        "s_per_epoch": train_s / max(1, len(epoch_times)),
        "epoch_s": list(epoch_times),
        "epoch_s_first": epoch_times[0] if epoch_times else None,  # includes tracing/compile
        "epoch_s_median_after_first": statistics.median(later) if later else None,
        "predict_s": predict_s,
        "predict_images_per_s": n_test / predict_s if predict_s > 0 else None,
    }


def write_results(
    result: TrainResult,
    test_samples: list,
    scores: list[float],
    argv: list[str] | None = None,
) -> None:
    out = result.out_dir
    sweep_columns = ["threshold", *metrics.COUNT_COLUMNS, "n", *metrics.METRIC_COLUMNS]
    atomic_write_text(out / "metrics.csv", csv_text(result.sweep, sweep_columns))
    atomic_write_text(out / "metrics.json", json_text({"thresholds": result.sweep}))
    c = result.confusion
    confusion = {
        "threshold": 0.5,
        "classes": ["ok", "defect"],
        "matrix": c.as_matrix(),
        "note": "rows: actual (ok, defect); columns: predicted (ok, defect)",
        **c.to_dict(),
    }
    atomic_write_text(out / "confusion.json", json_text(confusion))
    atomic_write_text(
        out / "confusion.csv",
        f"actual,predicted_ok,predicted_defect\nok,{c.tn},{c.fp}\ndefect,{c.fn},{c.tp}\n",
    )
    atomic_write_text(out / "history.csv", csv_text(result.history))
    atomic_write_text(
        out / "predictions.csv",
        csv_text(
            [
                {"path": _relative(s.path, result.config.data), "label": s.label, "score": score}
                for s, score in zip(test_samples, scores, strict=True)
            ],
            ["path", "label", "score"],
        ),
    )
    run = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "label": result.config.label(),
        "config": result.config.to_dict(),
        "counts": result.counts,
        "params_total": result.params_total,
        "best_epoch": result.best_epoch,
        "weights_file": WEIGHTS_FILE,
        "timing": result.timing,
        "at_0.5": result.at(0.5) if _has_half(result) else None,
        "environment": environment(argv),
    }
    atomic_write_text(out / "run.json", json_text(run))
    try:
        from castbench.report.figures import plot_history

        plot_history(result.history, out / "curves.png", title=result.config.label())
    except Exception as exc:  # a figure must not lose the numbers already written
        print(f"castbench: warning: training curves not drawn: {exc}", flush=True)


def _relative(path: Path, root: str | None) -> str:
    """A test image's path relative to the data root (as in the Kaggle layout)."""
    try:
        return str(Path(path).relative_to(Path(root))) if root else str(path)
    except ValueError:
        return str(path)


def _has_half(result: TrainResult) -> bool:
    return any(math.isclose(r["threshold"], 0.5) for r in result.sweep)
