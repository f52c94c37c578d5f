"""Read timing rows from any source castbench writes: a ``castbench timing`` results folder or
a ``pytest bench --benchmark-json`` file. Both become rows of the results schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.results import ROWS_FILE, read_rows

# extra_info keys that are columns of the results schema
_EXTRA_COLUMNS = (
    "backbone", "input_size", "batch_size", "mode", "precision", "trainable", "backend", "device",
    "jit_compile", "params_total", "params_trainable", "gflops_per_image", "n_train",
    "steps_per_epoch", "first_step_s", "compile_s", "images_per_s", "epoch_s", "warmup_s",
    "runtime", "runtime_version", "threads", "max_abs_diff", "keras_output_range", "export_s",
    "artifact_mb", "gate_output_range", "max_rel_diff", "runtime_settings", "session_s",
    "artifact_reused", "gate_tolerance",
)  # fmt: skip


def rows_from_benchmark_json(path: Path) -> list[dict[str, Any]]:
    """Rows from a pytest-benchmark JSON file written by ``pytest bench``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"unreadable timing file {path}: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("benchmarks"), list):
        raise UsageError(f"{path} is neither a castbench results file nor pytest-benchmark JSON")
    rows = []
    for bench in payload["benchmarks"]:
        extra = bench.get("extra_info") or {}
        stats = bench.get("stats") or {}
        if "backbone" not in extra or "median" not in stats:
            continue  # a benchmark that is not one of castbench's
        row = {k: extra.get(k) for k in _EXTRA_COLUMNS}
        row.update(
            key=bench.get("fullname", bench.get("name")),
            step_s_mean=stats.get("mean"),
            step_s_median=stats["median"],
            step_s_std=stats.get("stddev"),
            step_s_min=stats.get("min"),
            step_s_max=stats.get("max"),
            steps=stats.get("rounds"),
            samples_s=stats.get("data"),
            status="ok",
        )
        rows.append(row)
    return rows


def load_rows(source: str | Path) -> list[dict[str, Any]]:
    """Timing rows from a results folder, its ``timing.json``, or a pytest-benchmark JSON file."""
    path = Path(source)
    if path.is_dir():
        return read_rows(path)
    if not path.is_file():
        raise UsageError(f"no such results folder or file: {path}")
    if path.name == ROWS_FILE:
        return read_rows(path.parent)
    return rows_from_benchmark_json(path)
