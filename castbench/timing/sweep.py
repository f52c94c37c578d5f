"""Measuring configurations in this process: one model per model group, one row per
configuration (what a pool process runs, and what ``--isolate none`` runs in the CLI's own
process)."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import keras

from castbench.environment import device_name
from castbench.errors import classify_failure
from castbench.profile import profile_model
from castbench.results import ResultsFolder, measured_row, row_header
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing
from castbench.timing.peak import peak_for_precision
from castbench.timing.schedule import drive
from castbench.timing.timer import measure
from castbench.timing.xla_options import effective_matmul_precision


def base_row(config: TimingConfig, device: str) -> dict[str, Any]:
    """The fields a row has whatever happened to the measurement."""
    header = row_header(config, device, keras.backend.backend())
    return {**header, "matmul_precision": effective_matmul_precision()}


def failed_row(config: TimingConfig, device: str, exc: BaseException) -> dict[str, Any]:
    status, message = classify_failure(exc)
    return {**base_row(config, device), "status": status, "error": message}


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
    serving = None  # exports of this model for serving runtimes, made on first use
    try:
        for unit in serving_units(configs):
            for config in unit:
                on_start(config)
            load_start = os.getloadavg()[0]  # what else the machine ran, beside the figures
            if unit[0].runtime == "keras":
                results = [_keras_fields(model, unit[0], profile, device)]
            else:
                if serving is None:
                    from castbench.serving.bench import ServingBench

                    serving = ServingBench.for_config(model, unit[0])
                results = _serving_fields(serving, unit, profile)
            load_end = os.getloadavg()[0]
            for config, result in zip(unit, results, strict=True):
                row = (failed_row(config, device, result) if isinstance(result, Exception)
                       else {**base_row(config, device), **result})  # fmt: skip
                row.update(params_total=profile["params_total"],
                           params_trainable=profile["params_trainable"],
                           gflops_per_image=profile["gflops_per_image"],
                           load_1m_start=load_start, load_1m_end=load_end)  # fmt: skip
                on_row(row)
    finally:
        if serving is not None:
            serving.close()
        del model
        keras.backend.clear_session()
        gc.collect()


def serving_units(configs: list[TimingConfig]) -> list[list[TimingConfig]]:
    """What is measured together: a Keras configuration alone; consecutive serving
    configurations of one batch size, precision and thread count together, their runtimes
    timed round robin. The configurations keep their order (rows come back in it)."""
    units: list[list[TimingConfig]] = []
    for config in configs:
        previous = units[-1][-1] if units else None
        if (previous is not None and config.runtime != "keras" and previous.runtime != "keras"
                and _round_robin_key(config) == _round_robin_key(previous)):  # fmt: skip
            units[-1].append(config)
        else:
            units.append([config])
    return units


def _round_robin_key(config: TimingConfig) -> tuple[Any, ...]:
    return (config.batch_size, config.precision, config.threads, config.steps, config.warmup)


def _keras_fields(model: keras.Model, config: TimingConfig, profile: dict[str, Any],
                  device: str) -> dict[str, Any] | Exception:  # fmt: skip
    try:
        measurement = measure(StepRunner(model, config), profile["gflops_per_image"],
                              peak_for_precision(config.precision))  # fmt: skip
    except Exception as exc:
        return exc
    row = measured_row(base_row(config, device), measurement)
    return {**row, "runtime_version": keras.__version__}


def _serving_fields(serving: Any, unit: list[TimingConfig], profile: dict[str, Any]
                    ) -> list[dict[str, Any] | Exception]:  # fmt: skip
    try:
        return serving.measure_round_robin(unit, profile["gflops_per_image"])
    except Exception as exc:  # a failure while they were timed together: theirs alike
        return [exc] * len(unit)


def run_sweep(
    configs: Iterable[TimingConfig],
    folder: ResultsFolder,
    resume: bool = False,
    stream: TextIO = sys.stderr,
    oom_retry: bool = False,
) -> list[dict[str, Any]]:
    """Measure, in this process, every configuration not already in ``folder`` (with
    ``resume``); see :func:`castbench.timing.pool.run_isolated` for separate processes."""
    device = device_name()

    def run_group(group, on_start, on_row) -> None:
        measure_group(group, device, on_start, on_row)

    return drive(configs, folder, run_group, resume=resume, oom_retry=oom_retry, stream=stream)
