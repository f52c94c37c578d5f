"""The timing results schema's past versions, each with its upgrade to the next: what changed
and how an older folder's rows are read today (:mod:`castbench.results` applies them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def upgrade_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: the schema version's key is ``schema_version`` (it was ``version``), as
    in castbench's training and experiment files; rows gain the step kinds."""
    upgraded = {name: value for name, value in payload.items() if name != "version"}
    upgraded["schema_version"] = 2
    if "rows" in upgraded:
        upgraded["rows"] = [_row_v1_to_v2(row) for row in upgraded["rows"]]
    return upgraded


_V1_JIT = {"auto": None, "jit": True, "nojit": False}


def _row_v1_to_v2(row: dict[str, Any]) -> dict[str, Any]:
    """Version 1 timed ``train_on_batch`` / ``predict_on_batch``, which is the API step: its
    rows say so, in their key too, so they never pair with a compiled-step row. Its
    ``jit_compile`` held what Keras resolved in ok rows; version 2 keeps that as
    ``jit_resolved`` and ``jit_compile`` is what was asked (read from the key).
    ``peak_gpu_mem_mb`` was NVML's used memory, now named for what it is."""
    row = dict(row)
    fields = row["key"].split("|")
    row["jit_resolved"] = row.get("jit_compile") if row.get("status") == "ok" else None
    row["jit_compile"] = _V1_JIT.get(fields[5]) if len(fields) > 5 else row.get("jit_compile")
    runtime = row.get("runtime") or "keras"
    if runtime != "keras":  # a serving runtime's row: its own single step
        row["step"] = runtime
    else:
        row["key"] = row["key"] + "|step-api"
        row["step"] = "api"
        if row.get("status") == "ok":
            row["api_step_s_median"] = row.get("step_s_median")
    row["nvml_gpu_mem_used_mb"] = row.pop("peak_gpu_mem_mb", None)
    return row


# version -> the function that turns a file of that version into the next one
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: upgrade_v1}
