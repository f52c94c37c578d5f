"""Train one backbone + head on the casting set and evaluate it on the test split.

The run follows the seed study: Adam + binary cross-entropy, a validation split taken from the
training images, the best epoch by validation loss kept (saved into a ``.weights.h5`` file:
HDF5, no pickle), restored, then scored on the test split at every decision threshold 0.1–0.9.
The schedule comes from a recipe (``castbench.recipes``: the seed's constant rate, or warm-up +
cosine decay + weight decay for random initial weights); with precise batch norm on
(``castbench.precise_bn``) each epoch's batch-norm statistics are recomputed over training
batches before the validation, so the epoch chosen and the test see the statistics of their
own weights.

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

import numpy as np

from castbench import metrics
from castbench.checkpoint import EpochCheckpoint
from castbench.errors import UsageError
from castbench.files import atomic_write_text, csv_text
from castbench.recipes import RECIPES, SCHEDULES
from castbench.runtime import set_random_seed
from castbench.spec import ModelSpec

SCHEMA = "castbench.train"
SCHEMA_VERSION = 1
WEIGHTS_FILE = "best.weights.h5"
DEFAULT_EPOCHS = RECIPES["seed"].epochs
DEFAULT_BATCH = RECIPES["seed"].batch_size
DEFAULT_LR = RECIPES["seed"].learning_rate
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
    recipe: str = "seed"  # the recipe the schedule below came from (recorded, not used)
    schedule: str = "constant"  # constant | cosine (linear warm-up, then cosine to zero)
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0  # decoupled (AdamW); 0: Adam
    precise_bn: int = 0  # training batches averaged into batch-norm statistics; 0: off

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
        if self.schedule not in SCHEDULES:
            raise UsageError(
                f"unknown schedule {self.schedule!r}; choose from: {', '.join(SCHEDULES)}"
            )
        if not (self.warmup_epochs >= 0 and self.weight_decay >= 0):
            raise UsageError("warm-up epochs and weight decay must not be negative")
        if self.precise_bn < 0:
            raise UsageError(f"--precise-bn must not be negative, got {self.precise_bn}")
        if self.precise_bn and self.spec.backbone_frozen:
            raise UsageError(
                "--precise-bn recomputes the statistics of batch norm that trains; with "
                "--trainable head the backbone's batch norm is frozen"
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
# training: splits, datasets, model, fit, restore, evaluate


@dataclass(frozen=True)
class Splits:
    root: Path
    train: list
    validation: list
    test: list
    n_skipped: int


@dataclass(frozen=True)
class Datasets:
    train: Any
    validation: Any
    test: Any


@dataclass
class Fitted:
    history: list[dict[str, Any]]
    epoch_times: list[float]
    best_epoch: int | None
    train_s: float  # over every epoch, those before an interruption included
    resumed_after_epoch: int | None = None  # the checkpoint this run went on from


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    log: Log = _print,
    argv: list[str] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train, keep the best epoch by validation loss, evaluate on the test split, write files.
    With ``resume``, an interrupted run in ``out_dir`` goes on from its last finished epoch."""
    config.validate()
    started = environment(argv)  # the start time and load are the run's, not the write's
    out = Path(out_dir)
    root = resolve_data(config.data, log)
    if config.data is None:
        config = replace(config, data=str(root))
    splits = load_splits(root, config, log)

    import keras

    out.mkdir(parents=True, exist_ok=True)
    datasets = make_datasets(splits, config)
    model = build_for_training(config, steps_per_epoch=_steps(len(splits.train), config))
    params = count_params_of(model)
    log(_start_line(config, splits))
    weights_path = out / WEIGHTS_FILE
    checkpoint = EpochCheckpoint(out, config.to_dict())
    if not resume:
        checkpoint.clear()
    fitted = fit(model, datasets, config, weights_path, log, checkpoint)
    restore_best(model, weights_path, fitted, log)
    result, scores = evaluate(model, datasets.test, splits, config, fitted, params, out, log)
    write_results(result, splits.test, scores, started)
    checkpoint.clear()  # only once the results are written: until then a resume goes on
    log(f"results in {out}")
    del model
    keras.backend.clear_session()
    return result


def load_splits(root: Path, config: TrainConfig, log: Log) -> Splits:
    """Training, validation (a seeded share of the training images) and test samples."""
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
    if len({s.label for s in train_samples}) < 2:
        log("warning: the training split holds one class only")
    return Splits(root, train_samples, val_samples, list(data.test), len(data.skipped))


def make_datasets(splits: Splits, config: TrainConfig) -> Datasets:
    """The input pipelines; only training shuffles and augments (seeded)."""
    from castbench.data.pipeline import make_dataset

    set_random_seed(config.seed)
    size, batch = config.spec.input_size, config.batch_size
    common = {"preprocess": config.spec.record.preprocess_fn(), "cache_dir": config.cache_dir}
    train_ds = make_dataset(
        splits.train, size, batch, augment=config.augment, shuffle=True, seed=config.seed, **common
    )
    return Datasets(
        train=train_ds,
        validation=make_dataset(splits.validation, size, batch, **common),
        test=make_dataset(splits.test, size, batch, **common),
    )


def _steps(n_images: int, config: TrainConfig) -> int:
    return max(1, math.ceil(n_images / config.batch_size))


def build_for_training(config: TrainConfig, steps_per_epoch: int):
    """The model, compiled with the recipe's optimiser and learning-rate schedule."""
    import keras

    from castbench.models import build_model, compile_for_training

    if keras.backend.backend() == "jax":  # a later run (--runs, --resume) loads the compiled steps
        from castbench.timing import compile_cache

        compile_cache.enable(compile_cache.requested_cache_dir())
    keras.backend.clear_session()
    model = build_model(config.spec, seed=config.seed)
    compile_for_training(
        model,
        learning_rate=config.learning_rate,
        jit_compile=config.jit_compile,
        metrics=(
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.Precision(name="precision"),
        ),
        optimizer=make_optimizer(config, steps_per_epoch),
    )
    return model


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """Adam (AdamW with weight decay) at a constant rate, or a linear warm-up to the peak rate
    followed by a cosine decay to zero over the remaining steps."""
    import keras

    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        total = config.epochs * steps_per_epoch
        warmup = min(total - 1, round(config.warmup_epochs * steps_per_epoch))
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate,
            decay_steps=max(1, total - warmup),
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if config.weight_decay > 0:
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(rate)


def count_params_of(model) -> int:
    from castbench.models import count_params

    return count_params(model).total


def _start_line(config: TrainConfig, splits: Splits) -> str:
    spec = config.spec
    size = spec.input_size
    precise = f", precise BN {config.precise_bn} batches" if config.precise_bn else ""
    return (
        f"training {spec.record.name} + {spec.head_label} head at {size}x{size}"
        f"{', backbone frozen' if spec.backbone_frozen else ''}, "
        f"augment {config.augment}, batch {config.batch_size}, {config.epochs} epoch(s), "
        f"{config.schedule} lr {config.learning_rate:g}{precise}: "
        f"{len(splits.train)} train / {len(splits.validation)} validation / "
        f"{len(splits.test)} test images from {splits.root}"
    )


def fit(
    model,
    datasets: Datasets,
    config: TrainConfig,
    weights_path: Path,
    log: Log,
    checkpoint: EpochCheckpoint | None = None,
) -> Fitted:
    """One epoch at a time: train, recompute batch-norm statistics (precise BN, when on),
    validate, save the weights when the validation loss is the lowest so far, then write the
    checkpoint. A checkpoint already there (a resumed run) sets where the loop starts."""
    history: list[dict[str, Any]] = []
    times: list[float] = []
    best_loss, best_epoch, train_s_before = math.inf, None, 0.0
    restored = checkpoint.restore(model) if checkpoint is not None else None
    if restored is None:
        weights_path.unlink(missing_ok=True)
    else:
        state = restored[1]
        history, times, best_epoch = state["history"], state["epoch_times"], state["best_epoch"]
        best_loss = math.inf if state["best_loss"] is None else state["best_loss"]
        train_s_before = state["train_s"]
        datasets.train.passes = state["passes"]
        if best_epoch == restored[0]:  # its weights may have been cut short of the best file
            model.save_weights(str(weights_path))
        log(f"resuming after epoch {restored[0]}/{config.epochs} from {checkpoint.state_path}")
    started = time.perf_counter() - train_s_before
    for epoch in range(len(history), config.epochs):
        epoch_started = time.perf_counter()
        trained = model.fit(
            datasets.train,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,  # the dataset shuffles itself, seeded
            verbose=0,
        )
        row: dict[str, Any] = {k: float(v[-1]) for k, v in trained.history.items()}
        row["precise_bn_s"] = _precise_bn(model, datasets.train, config.precise_bn)
        validated = model.evaluate(datasets.validation, verbose=0, return_dict=True)
        row.update({f"val_{k}": float(v) for k, v in validated.items()})
        times.append(time.perf_counter() - epoch_started)
        history.append(_history_row(epoch + 1, row, times[-1]))
        improved = row["val_loss"] < best_loss  # NaN never compares lower
        if improved:
            best_loss, best_epoch = row["val_loss"], epoch + 1
        if checkpoint is not None:  # first: a resume rewrites the best weights from it
            checkpoint.save(model, epoch + 1, {
                "history": history, "epoch_times": times, "best_epoch": best_epoch,
                "best_loss": None if math.isinf(best_loss) else best_loss,
                "train_s": time.perf_counter() - started, "passes": datasets.train.passes,
            })  # fmt: skip
        if improved:
            model.save_weights(str(weights_path))
        mark = "  * best, saved" if improved else ""
        log(_epoch_line(epoch + 1, config.epochs, row, times[-1]) + mark)
    resumed_after = None if restored is None else restored[0]
    return Fitted(history, times, best_epoch, time.perf_counter() - started, resumed_after)


def _precise_bn(model, dataset, batches: int) -> float | None:
    """Seconds spent recomputing the batch-norm statistics, None when precise BN is off."""
    if not batches:
        return None
    from castbench import precise_bn

    started = time.perf_counter()
    precise_bn.recompute(model, dataset, batches)
    return time.perf_counter() - started


def _history_row(epoch: int, values: dict[str, Any], seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch}
    for key, value in values.items():
        row[key] = value if value is None or math.isfinite(value) else None
    row["epoch_s"] = seconds
    return row


def _epoch_line(epoch: int, epochs: int, row: dict[str, Any], seconds: float) -> str:
    parts = [f"epoch {epoch}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_recall"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


def restore_best(model, weights_path: Path, fitted: Fitted, log: Log) -> None:
    """Load the best epoch's weights (their batch-norm statistics were recomputed for them
    before they were validated, so the test sees the same model the validation chose)."""
    if weights_path.is_file():
        model.load_weights(str(weights_path))
    else:  # no finite validation loss: keep the last weights, and say so
        log("warning: validation loss never improved on infinity; keeping the last epoch")
        model.save_weights(str(weights_path))
        fitted.best_epoch = None


def evaluate(
    model,
    test_ds,
    splits: Splits,
    config: TrainConfig,
    fitted: Fitted,
    params_total: int,
    out: Path,
    log: Log,
) -> tuple[TrainResult, list[float]]:
    """Score the test split, sweep the thresholds, and say when the scores tell nothing."""
    started = time.perf_counter()
    labels, scores = predict_scores(model, test_ds)
    predict_s = time.perf_counter() - started
    expected = [s.label for s in splits.test]
    if labels != expected:  # the pipeline must keep order when it does not shuffle
        raise RuntimeError("test predictions came back in another order than the test files")
    if metrics.scores_indistinct(scores):
        log(
            f"warning: every test score is {statistics.fmean(scores):.4f} to within "
            f"{metrics.INDISTINCT_SCORE_SPREAD:g}: the model tells no image from another, so the "
            "metrics below only restate the class shares. From random weights this is common "
            "early on (batch normalisation's moving statistics lag far behind the weights); "
            "use --precise-bn, train longer, on more images, or from --weights imagenet"
        )
    sweep = _sweep_with_notes(labels, scores, config.thresholds, log)
    result = TrainResult(
        out_dir=out,
        config=config,
        sweep=sweep,
        confusion=metrics.confusion_counts(labels, scores, 0.5),
        history=fitted.history,
        timing=_timing(fitted, predict_s, len(splits.test)),
        best_epoch=fitted.best_epoch,
        params_total=params_total,
        counts={
            "n_train": len(splits.train),
            "n_validation": len(splits.validation),
            "n_test": len(splits.test),
            "n_test_defect": sum(expected),
            "n_skipped": splits.n_skipped,
        },
    )
    if _has_half(result):
        log(_test_line(result))
    return result, scores


def _test_line(result: TrainResult) -> str:
    half, c = result.at(0.5), result.confusion
    return (
        f"test at 0.5: accuracy {half['accuracy_pct']:.2f} %, recall "
        f"{half['recall_pct']:.2f} %, precision {half['precision_pct']:.2f} %, "
        f"F1 {half['f1']:.3f} (tp {c.tp}, fp {c.fp}, tn {c.tn}, fn {c.fn}); "
        f"best epoch {result.best_epoch}; train {result.timing['train_s']:.1f} s"
    )


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
        labels.extend(int(round(float(v))) for v in np.asarray(batch_labels).reshape(-1))
    return labels, scores


def _timing(fitted: Fitted, predict_s: float, n_test: int) -> dict[str, Any]:
    train_s, epoch_times = fitted.train_s, fitted.epoch_times
    later = epoch_times[1:]
    return {
        "train_s": train_s,
        "resumed_after_epoch": fitted.resumed_after_epoch,
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
    started: dict[str, Any],
) -> None:
    """The results folder's files; ``started``: the environment as :func:`environment` read it
    when the run began, to which the load average at the end is added."""
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
        "environment": {**started, "load_avg_1m_at_end": os.getloadavg()[0]},
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
