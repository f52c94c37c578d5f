"""Read timing rows from any source castbench writes: a ``castbench timing`` results folder or
a ``pytest bench --benchmark-json`` file. Both become rows of the results schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.results import read_rows

# extra_info keys that are columns of the results schema
_EXTRA_COLUMNS = (
    "backbone", "input_size", "batch_size", "mode", "precision", "backend", "device",
    "jit_compile", "params_total", "params_trainable", "gflops_per_image", "n_train",
    "steps_per_epoch", "first_step_s", "compile_s", "images_per_s", "epoch_s", "warmup_s",
)  # fmt: skip


def is_benchmark_json(path: Path) -> bool:
    return path.is_file() and path.suffix == ".json"


def rows_from_benchmark_json(path: Path) -> list[dict[str, Any]]:
    """Rows from a pytest-benchmark JSON file written by ``pytest bench``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        benchmarks = payload["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"not a readable pytest-benchmark JSON file: {path} ({exc})") from None
    rows = []
    for bench in benchmarks:
        extra = bench.get("extra_info", {})
        if "backbone" not in extra:
            continue  # a benchmark that is not one of castbench's
        stats = bench["stats"]
        row = {k: extra.get(k) for k in _EXTRA_COLUMNS}
        row.update(
            key=bench.get("fullname", bench.get("name")),
            step_s_mean=stats["mean"],
            step_s_median=stats["median"],
            step_s_std=stats["stddev"],
            step_s_min=stats["min"],
            step_s_max=stats["max"],
            steps=stats["rounds"],
            samples_s=stats.get("data"),
            status="ok",
        )
        rows.append(row)
    return rows


def load_rows(source: Path) -> list[dict[str, Any]]:
    """Timing rows from a results folder or a pytest-benchmark JSON file."""
    source = Path(source)
    if is_benchmark_json(source):
        return rows_from_benchmark_json(source)
    return read_rows(source)
