"""What serving runtimes buy over Keras, from timing rows: per backbone and batch size, the
median latency in each runtime and the best runtime's latency divided by Keras's
``predict_on_batch``. Pure logic on rows (pandas), no runtime imported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from castbench.results import TIMED_STATUSES

KERAS = "keras"


def latency_table(rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """One row per backbone: median ms per runtime, the best serving runtime, best / Keras.

    Timed rows (status ok or ungated) count; a runtime that did not export, mismatched or is
    not installed has no latency (NaN). ``ungated`` names the runtimes whose gate could not
    judge (their latency is measured, their correctness is not known).
    """
    ok = rows[rows["status"].isin(TIMED_STATUSES) & (rows["batch_size"] == batch_size)]
    ok = ok.assign(runtime=served_as(ok), ms=ok["step_s_median"] * 1e3)
    table = ok.pivot_table(index=["backbone", "input_size"], columns="runtime", values="ms",
                           aggfunc="first", sort=False)  # fmt: skip
    serving = [c for c in table.columns if c != KERAS]
    if serving:
        table["best runtime"] = table[serving].apply(
            lambda r: r.idxmin() if r.notna().any() else None, axis=1
        )
        best = table[serving].min(axis=1, skipna=True)
        if KERAS in table:
            table["best / keras"] = best / table[KERAS]
    ungated = ok[ok["status"] == "ungated"].groupby(["backbone", "input_size"], sort=False)
    table["ungated"] = ungated["runtime"].agg(", ".join).reindex(table.index).fillna("")
    return table.reset_index()


def served_as(rows: pd.DataFrame) -> pd.Series:
    """What served each row: its runtime (``keras`` where a row names none), and its precision
    where that is not float32 (``openvino int8``), so that rows of one runtime at two
    precisions are never taken for one another."""
    runtime = rows["runtime"].fillna(KERAS) if "runtime" in rows else pd.Series(KERAS, rows.index)
    precision = (rows["precision"].fillna("float32") if "precision" in rows
                 else pd.Series("float32", rows.index))  # fmt: skip
    return runtime.where(precision == "float32", runtime + " " + precision)


def markdown(table: pd.DataFrame) -> str:
    """``table`` as a Markdown table, latencies to 3 significant figures."""
    headers = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        if pd.isna(value):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def write_latency_tables(rows: pd.DataFrame, path: Path) -> Path:
    """One Markdown table per batch size (``latency_table``) into ``path``."""
    parts = []
    for batch in sorted(set(rows.loc[rows["status"].isin(TIMED_STATUSES), "batch_size"])):
        parts.append(f"## Batch size {batch}: median latency (ms)\n\n")
        parts.append(markdown(latency_table(rows, batch)) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path
