"""Run a matrix of timing configurations in this process, one model per backbone group,
writing each row as soon as it is measured."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import keras

from castbench.environment import device_name
from castbench.profile import profile_model
from castbench.results import ResultsFolder
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing, classify_failure, measure


def base_row(config: TimingConfig, device: str) -> dict[str, Any]:
    """The fields a row has whatever happened to the measurement."""
    return {
        "key": config.key,
        "backbone": config.backbone,
        "input_size": config.input_size,
        "batch_size": config.batch_size,
        "mode": config.mode,
        "precision": config.precision,
        "backend": keras.backend.backend(),
        "device": device,
        "jit_compile": config.jit_compile,
        "head": config.head,
        "weights": config.weights,
        "steps": config.steps,
        "warmup": config.warmup,
        "n_train": config.n_train,
        "steps_per_epoch": config.steps_per_epoch,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def failed_row(config: TimingConfig, device: str, exc: BaseException) -> dict[str, Any]:
    status, message = classify_failure(exc)
    return {**base_row(config, device), "status": status, "error": message}


class Progress:
    """One line per configuration: what is running, elapsed time and an estimate of the rest."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.finished = 0

    def _clock(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.finished == 0:
            return f"{_duration(elapsed)} elapsed"
        left = elapsed / self.finished * (self.total - self.finished)
        return f"{_duration(elapsed)} elapsed, ~{_duration(left)} left"

    def start(self, config: TimingConfig) -> None:
        label = (f"[{self.finished + 1}/{self.total}] {config.backbone} {config.input_size}px "
                 f"bs {config.batch_size} {config.mode}")  # fmt: skip
        self.stream.write(f"{label:<48} ... ")
        self.stream.flush()

    def done(self, row: dict[str, Any]) -> None:
        self.finished += 1
        if row["status"] == "ok":
            outcome = (f"{row['step_s_median'] * 1e3:8.1f} ms/step ±{row['step_s_std'] * 1e3:.1f}"
                       f"  {row['images_per_s']:7.1f} img/s")  # fmt: skip
        else:
            outcome = f"{row['status']}: {row['error']}"
        self.stream.write(f"{outcome}  ({self._clock()})\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def measure_group(
    configs: list[TimingConfig],
    device: str,
    on_start: Callable[[TimingConfig], None],
    on_row: Callable[[dict[str, Any]], None],
) -> None:
    """Build one model for configurations that share it, measure each, then free it."""
    try:
        model = build_for_timing(configs[0])
        profile = profile_model(model)
    except Exception as exc:  # the whole group fails the same way: one row each
        for config in configs:
            on_start(config)
            on_row(failed_row(config, device, exc))
        return
    try:
        for config in configs:
            on_start(config)
            try:
                fields = measure(StepRunner(model, config), profile["gflops_per_image"])
                row = {**base_row(config, device), **fields, "status": "ok"}
            except Exception as exc:
                row = failed_row(config, device, exc)
            row.update(params_total=profile["params_total"],
                       params_trainable=profile["params_trainable"],
                       gflops_per_image=profile["gflops_per_image"])  # fmt: skip
            on_row(row)
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def run_sweep(
    configs: Iterable[TimingConfig],
    folder: ResultsFolder,
    resume: bool = False,
    stream: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Measure every configuration not already in ``folder`` (with ``resume``)."""
    configs = list(configs)
    if resume:
        done = folder.finished_keys()
        configs = [c for c in configs if c.key not in done]
    progress = Progress(len(configs), stream)
    device = device_name()
    written: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        written.append(folder.add(row))
        progress.done(row)

    for _, group in itertools.groupby(configs, key=lambda c: c.model_key):
        measure_group(list(group), device, progress.start, record)
    return written
