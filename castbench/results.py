"""One versioned results schema for timing runs: ``timing.json`` (rows with their step
samples), ``timing.csv`` (the same rows, flat) and ``run.json`` (the run's environment and the
history of the invocations that wrote the folder).

Every row is written as soon as it is measured, by replacing the files atomically, so an
interrupted run leaves a readable folder with every finished row. Folders written by an older
castbench are read through :data:`UPGRADES`, one schema version at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castbench import schema_history
from castbench.errors import UsageError
from castbench.files import atomic_write_text, csv_text

if TYPE_CHECKING:
    from castbench.timing.config import TimingConfig
    from castbench.timing.measurement import Measurement

SCHEMA = "castbench.timing"
SCHEMA_VERSION = 2
ROWS_FILE = "timing.json"
CSV_FILE = "timing.csv"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
# skipped: a peer framework has no such model; mismatch: a serving runtime's outputs differ
# ungated: timed, but its gate could not judge (castbench.serving); recompiled: the backend
# traced or compiled again while timed steps ran, so the times are kept (and marked) but are
# not a clean measurement of the step
STATUSES = ("ok", "oom", "error", "skipped", "mismatch", "ungated", "recompiled")
TIMED_STATUSES = ("ok", "ungated")  # rows with a latency compare and plots may use
_RECOMPILED = ("{} trace(s)/compile(s) while the timed steps ran: the step times include them "
               "(a shape, dtype or sharding of the state changed between steps)")  # fmt: skip
# Kept in run.json for each invocation, and joined (not replaced) by a --resume run.
MATRIX_FIELDS = ("matrix", "shard_keys")

# Each older schema version's upgrade to the next, applied in order when a folder is read.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = dict(schema_history.UPGRADES)

# CSV column order; every row carries these keys (None where not measured).
COLUMNS = (
    "key", "backbone", "input_size", "batch_size", "mode", "precision", "backend", "device",
    "jit_compile", "jit_resolved", "head", "weights", "trainable", "step", "steps", "warmup",
    "first_step_s", "compile_s", "compile_load_s", "compile_cache_hit",
    "step_s_mean", "step_s_median", "step_s_p90", "step_s_p99", "step_s_std", "step_s_min",
    "step_s_max", "compiled_step_s_median", "api_step_s_median", "framework_overhead_ms",
    "images_per_s", "images_per_s_pipelined", "images_per_s_pipelined_std", "pipeline_depth",
    "recompiled", "loss_scale_skips", "n_train", "steps_per_epoch", "epoch_s", "params_total",
    "params_trainable", "gflops_per_image", "achieved_gflops_per_s", "pct_of_peak",
    "step_mem_mb", "step_mem_source", "peak_rss_mb", "nvml_gpu_mem_used_mb", "gpu_util_pct",
    "gpu_power_w", "energy_j_per_image", "probe_window_s", "epoch_measured_s", "data_wait_s",
    "data_wait_fraction", "retried_from_batch", "strategy", "replicas", "per_replica_batch",
    "global_batch", "scaling_efficiency", "profile_dir", "runtime", "runtime_version",
    "threads", "processes", "process_spread_pct", "max_abs_diff", "keras_output_range",
    "export_s", "artifact_mb", "status", "error", "measured_at", "matmul_precision",
    "gate_output_range", "max_rel_diff", "runtime_settings", "session_s", "artifact_reused",
    "load_1m_start", "load_1m_end", "gate_tolerance",
    "test_images", "test_accuracy_pct", "test_recall_pct", "test_precision_pct", "test_f1",
    "keras_test_accuracy_pct", "keras_test_recall_pct", "keras_test_precision_pct",
    "keras_test_f1", "delta_accuracy_pct", "delta_recall_pct", "delta_precision_pct",
    "delta_f1", "mcnemar_keras_only", "mcnemar_served_only", "mcnemar_p", "interleaved_with",
)  # fmt: skip
# Kept in timing.json only: lists do not belong in a CSV cell. samples_s / warmup_s are the
# row's own step kind; step_samples_s holds every kind's ({kind: {warmup_s, samples_s}}).
JSON_ONLY = ("samples_s", "warmup_s", "step_samples_s", "process_medians_s")


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


def row_header(config: TimingConfig, device: str | None, backend: str | None) -> dict[str, Any]:
    """The fields a row has whatever happened to the measurement: what was asked."""
    return {
        "key": config.key,
        "backbone": config.backbone,
        "input_size": config.input_size,
        "batch_size": config.batch_size,
        "mode": config.mode,
        "precision": config.precision,
        "backend": backend,
        "device": device,
        "jit_compile": config.jit_compile,
        "head": config.head,
        "weights": config.weights,
        "trainable": config.trainable,
        "step": config.primary_step,
        "runtime": config.runtime,
        "threads": None if config.runtime == "keras" else config.threads,
        "strategy": config.strategy,
        "steps": config.steps,
        "warmup": config.warmup,
        "n_train": config.n_train,
        "steps_per_epoch": config.steps_per_epoch,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def measured_row(header: dict[str, Any], measurement: Measurement) -> dict[str, Any]:
    """The row of a successful measurement: ``header`` (what was asked) and what was measured."""
    m = measurement
    primary = m.primary
    medians = {kind: samples.median for kind, samples in m.steps.items()}
    memory = m.step_memory_bytes
    return {
        **header,
        **primary.stats,
        "step": primary.kind,
        "jit_resolved": m.jit_resolved,
        "first_step_s": primary.first_s,
        "compile_s": m.compile_s,
        "compile_load_s": m.compile.load_s,
        "compile_cache_hit": m.compile.cache_hit,
        "compiled_step_s_median": medians.get("compiled"),
        "api_step_s_median": medians.get("api"),
        "framework_overhead_ms": m.framework_overhead_ms,
        "images_per_s": m.images_per_s,
        "images_per_s_pipelined": m.pipelined_images_per_s[0],
        "images_per_s_pipelined_std": m.pipelined_images_per_s[1],
        "pipeline_depth": primary.pipeline_depth,
        "recompiled": m.recompiles,
        "steps": len(primary.samples_s),
        "steps_per_epoch": m.steps_per_epoch,
        "epoch_s": m.epoch_s,
        "gflops_per_image": m.gflops_per_image,
        "achieved_gflops_per_s": m.achieved_gflops_per_s,
        "pct_of_peak": m.pct_of_peak,
        "step_mem_mb": None if memory is None else round(memory / 2**20, 1),
        "step_mem_source": m.step_memory_source,
        "strategy": m.config.strategy,
        "replicas": m.replicas,
        "per_replica_batch": m.config.batch_size,
        "global_batch": m.batch,
        "warmup_s": list(primary.warmup_s),
        "samples_s": list(primary.samples_s),
        "step_samples_s": {kind: samples.as_json() for kind, samples in m.steps.items()},
        **m.probes,
        **m.extra,
        **(
            {"status": "recompiled", "error": _RECOMPILED.format(m.recompiles)}
            if m.recompiles
            else {"status": "ok"}
        ),
    }


def schema_version(payload: dict[str, Any]) -> Any:
    return payload.get("schema_version", payload.get("version"))


def upgrade(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """``payload`` (timing.json or run.json) brought up to ``SCHEMA_VERSION``."""
    version = schema_version(payload)
    while version != SCHEMA_VERSION:
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise UsageError(
                f"{path} has results schema version {version}, newer than this castbench reads "
                f"({SCHEMA_VERSION}); upgrade castbench to read it"
            )
        if version not in UPGRADES:
            raise UsageError(f"{path} has unknown results schema version {version!r}")
        payload = UPGRADES[version](payload)
        version = schema_version(payload)
    return payload


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"unreadable {what} {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a castbench timing {what}")
    return upgrade(payload, path)


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """Rows of a results folder; a clear error for a missing, unreadable or foreign folder."""
    path = Path(folder) / ROWS_FILE
    if not path.is_file():
        raise UsageError(f"not a castbench timing results folder (no {ROWS_FILE}): {folder}")
    return list(_read_json(path, "results file").get("rows", []))


def read_run_metadata(folder: Path) -> dict[str, Any]:
    """What a folder's ``run.json`` holds (empty without one; a UsageError when unreadable)."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return {}
    metadata = _read_json(path, "run metadata")
    return {k: v for k, v in metadata.items() if k not in ("schema", "schema_version")}


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
        self.flush()
        return completed

    def run_metadata(self) -> dict[str, Any]:
        """What ``run.json`` holds (empty when there is none)."""
        return read_run_metadata(self.path)

    def write_run_metadata(self, metadata: dict[str, Any]) -> None:
        payload = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION}
        payload.update((k, v) for k, v in metadata.items() if k not in payload)
        atomic_write_text(self.path / RUN_FILE, json.dumps(payload, indent=2, default=str) + "\n")

    def start_invocation(self, invocation: dict[str, Any], run_fields: dict[str, Any]) -> None:
        """Append ``invocation`` (command, start time, environment) to ``run.json``'s history.

        The first invocation's ``run_fields`` (environment, shard, matrix) describe the run; a
        later one (``--resume``) adds configurations to the matrix but replaces nothing.
        """
        previous = self.run_metadata()
        history = [*invocations(previous), invocation]
        metadata = {**run_fields, **previous, "invocations": history}
        for name in MATRIX_FIELDS:
            keys = [*(previous.get(name) or []), *(run_fields.get(name) or [])]
            metadata[name] = list(dict.fromkeys(keys)) if keys else run_fields.get(name)
        self.write_run_metadata(metadata)

    def complete_invocation(self, environment: dict[str, Any], summary: dict[str, Any]) -> None:
        """Add what only a measuring process knows (device, versions) to the latest invocation,
        and to the run's fields where they were not known yet."""
        metadata = self.run_metadata()
        history = invocations(metadata) or [{}]
        history[-1].setdefault("environment", {}).update(summary)
        known = {k: v for k, v in metadata.items() if v is not None}
        self.write_run_metadata({**environment, **known, "invocations": history})

    def flush(self) -> None:
        """Write the rows files (also for a folder without rows: it is a results folder)."""
        rows = self.rows
        payload = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "rows": rows}
        atomic_write_text(self.path / ROWS_FILE, json.dumps(payload, indent=1, default=str) + "\n")
        atomic_write_text(self.path / CSV_FILE, csv_text(rows, COLUMNS))


def invocations(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The invocation history of a run.json; one written before histories were kept has one."""
    if metadata.get("invocations"):
        return list(metadata["invocations"])
    if not metadata.get("command"):
        return []
    return [{"command": metadata["command"], "started_at": metadata.get("started_at")}]
