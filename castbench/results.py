"""One versioned results schema for timing runs: ``timing.json`` (rows with their step
samples), ``timing.csv`` (the same rows, flat) and ``run.json`` (environment, written once).

Every row is written as soon as it is measured, by replacing the files atomically, so an
interrupted run leaves a readable folder with every finished row.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.files import atomic_write_text, csv_text

SCHEMA = "castbench.timing"
SCHEMA_VERSION = 1
ROWS_FILE = "timing.json"
CSV_FILE = "timing.csv"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
# mismatch: a serving runtime's outputs differ from Keras's beyond tolerance, so it is not timed
STATUSES = ("ok", "oom", "error", "skipped", "mismatch")

# CSV column order; every row carries these keys (None where not measured).
COLUMNS = (
    "key", "backbone", "input_size", "batch_size", "mode", "precision", "backend", "device",
    "jit_compile", "head", "weights", "trainable", "steps", "warmup", "first_step_s", "compile_s",
    "step_s_mean", "step_s_median", "step_s_p90", "step_s_p99", "step_s_std", "step_s_min",
    "step_s_max", "images_per_s", "n_train", "steps_per_epoch", "epoch_s", "params_total",
    "params_trainable", "gflops_per_image", "achieved_gflops_per_s", "peak_rss_mb",
    "peak_gpu_mem_mb", "gpu_util_pct", "gpu_power_w", "epoch_measured_s", "data_wait_s",
    "data_wait_fraction", "retried_from_batch", "strategy", "replicas", "per_replica_batch",
    "global_batch", "scaling_efficiency", "profile_dir", "runtime", "runtime_version",
    "threads", "max_abs_diff", "keras_output_range", "export_s", "artifact_mb", "status", "error",
    "measured_at",
)  # fmt: skip
# Kept in timing.json only: lists do not belong in a CSV cell.
JSON_ONLY = ("samples_s", "warmup_s")


def complete_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every schema column present, in schema order, then the JSON-only fields."""
    unknown = set(row) - set(COLUMNS) - set(JSON_ONLY)
    if unknown:
        raise ValueError(f"fields outside the results schema: {sorted(unknown)}")
    if row.get("status") not in STATUSES:
        raise ValueError(f"row status must be one of {STATUSES}, got {row.get('status')!r}")
    completed = {column: row.get(column) for column in COLUMNS}
    completed.update({name: row.get(name) for name in JSON_ONLY})
    return completed


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """Rows of a results folder; a clear error for a missing, unreadable or foreign folder."""
    path = Path(folder) / ROWS_FILE
    if not path.is_file():
        raise UsageError(f"not a castbench timing results folder (no {ROWS_FILE}): {folder}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"unreadable results file {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a castbench timing results file")
    if payload.get("version") != SCHEMA_VERSION:
        raise UsageError(
            f"{path} has results schema version {payload.get('version')}; this castbench reads "
            f"version {SCHEMA_VERSION}"
        )
    return list(payload.get("rows", []))


class ResultsFolder:
    """A timing results folder being written: rows keyed by configuration."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder)
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"results path is not a folder: {self.path}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create results folder {self.path}: {exc}") from None
        self._rows: dict[str, dict[str, Any]] = {}
        self._reload()

    def _reload(self) -> None:
        if (self.path / ROWS_FILE).exists():
            self._rows = {row["key"]: row for row in read_rows(self.path)}

    @contextlib.contextmanager
    def locked(self) -> Iterator[ResultsFolder]:
        """Hold the folder's lock file (``.lock``, an exclusive ``flock``) for one writer.

        A second writer is refused at once rather than waiting; the kernel releases the lock
        when its holder exits, however it exits, so a killed run leaves nothing to clean up.
        """
        try:
            handle = open(self.path / LOCK_FILE, "a+", encoding="ascii")
        except OSError as exc:
            raise UsageError(f"cannot lock results folder {self.path}: {exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            by = f" (process {holder})" if holder.isdigit() else ""
            raise UsageError(
                f"results folder {self.path} is in use by another castbench run{by}; wait for "
                "it to finish or choose another --out"
            ) from None
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._reload()  # rows the previous holder wrote
            yield self
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows.values())

    def finished_keys(self) -> set[str]:
        return set(self._rows)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Record one row (replacing any earlier row of the same configuration) and persist."""
        completed = complete_row(row)
        self._rows[completed["key"]] = completed
        self._flush()
        return completed

    def run_metadata(self) -> dict[str, Any]:
        """What ``run.json`` holds (empty when there is none, or it is unreadable)."""
        try:
            return json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_run_metadata(self, metadata: dict[str, Any]) -> None:
        text = json.dumps({"schema": SCHEMA, "version": SCHEMA_VERSION, **metadata}, indent=2,
                          default=str)  # fmt: skip
        atomic_write_text(self.path / RUN_FILE, text + "\n")

    def _flush(self) -> None:
        rows = self.rows
        payload = {"schema": SCHEMA, "version": SCHEMA_VERSION, "rows": rows}
        atomic_write_text(self.path / ROWS_FILE, json.dumps(payload, indent=1, default=str) + "\n")
        atomic_write_text(self.path / CSV_FILE, csv_text(rows, COLUMNS))
