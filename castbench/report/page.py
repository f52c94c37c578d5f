"""Assemble the report: a list of blocks (headings, text, tables, figures) rendered twice, as
Markdown (``report.md``) and as a plain HTML page (``report.html``), with figures in
``figures/``."""

from __future__ import annotations

import html
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castbench import metrics
from castbench.report import figures
from castbench.report.load import ExperimentTable, Inputs, TimingTable
from castbench.report.load import finite_number as _num

MAX_CONFUSIONS = 24
STEP_BATCH = 4  # the batch size the speed–accuracy plot reads its step time at


@dataclass
class Block:
    kind: str  # heading | text | table | figure
    text: str = ""
    level: int = 2
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()
    path: str = ""


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# sections


def _rows_at_half(table: ExperimentTable) -> list[dict[str, Any]]:
    return [r for r in table.ok_rows if _num(r.get("threshold")) in (None, 0.5)]


def _quality_columns(tables: Sequence[ExperimentTable]) -> list[tuple[str, str, int]]:
    headers = []
    for metric, name in (
        ("accuracy_pct", "Accuracy %"),
        ("recall_pct", "Recall %"),
        ("precision_pct", "Precision %"),
        ("f1", "F1"),
    ):
        for index, table in enumerate(tables):
            if metric == "precision_pct" and table.source == "seed":
                continue
            headers.append((metric, f"{name} ({table.label})", index))
    return headers


def _comparison(tables: Sequence[ExperimentTable], key: str = "row") -> Block:
    """One row per configuration; the sources' metrics side by side; castbench's timings."""
    order: list[str] = []
    info: dict[str, dict[str, Any]] = {}
    by_source: list[dict[str, dict[str, Any]]] = []
    for table in tables:
        rows = {}
        for r in _rows_at_half(table):
            rows[r[key]] = r
            if r[key] not in order:
                order.append(r[key])
            if table.source != "seed" or r[key] not in info:
                info[r[key]] = r
        by_source.append(rows)
    metric_columns = _quality_columns(tables)
    own = [t for t in tables if t.source != "seed"]
    headers = ["Variant", "Backbone", "Size", "Head", "Augment", "Batch"]
    headers += [name for _, name, _ in metric_columns]
    if own:
        headers += ["Train s", "s / epoch", "Params"]
    rows = []
    for item in order:
        base = info[item]
        line = [base.get("variant"), base.get("backbone"), base.get("input_size"),
                base.get("head"), base.get("augment"), base.get("batch_size")]  # fmt: skip
        for metric, _, table_index in metric_columns:
            value = by_source[table_index].get(item, {}).get(metric)
            line.append(_fmt(_num(value), 3 if metric == "f1" else 2))
        if own:
            mine = by_source[tables.index(own[0])].get(item, {})
            line += [
                _fmt(_num(mine.get("train_s")), 1),
                _fmt(_num(mine.get("s_per_epoch")), 1),
                f"{int(mine['params_total']):,}" if mine.get("params_total") else "–",
            ]
        rows.append(line)
    return Block("table", headers=headers, rows=rows)


def _timing_rows(timing: TimingTable, mode: str = "train") -> list[dict[str, Any]]:
    return [
        r
        for r in timing.rows
        if (r.get("mode") or "train") == mode
        and (r.get("status") or "ok") == "ok"
        and _num(r.get("step_s")) is not None
    ]


def _timing_block(timing: TimingTable) -> list[Block]:
    blocks = []
    for mode in ("train", "infer"):
        rows = _timing_rows(timing, mode)
        if not rows:
            continue
        batches = sorted({int(r["batch_size"]) for r in rows})
        names: list[str] = []
        for r in rows:
            if r["backbone"] not in names:
                names.append(r["backbone"])
        table = []
        for name in names:
            cells = {int(r["batch_size"]): r for r in rows if r["backbone"] == name}
            size = next(iter(cells.values())).get("input_size")
            table.append([name, size] + [
                _fmt(1000 * _num(cells[b]["step_s"]), 0) if b in cells else "–" for b in batches
            ])  # fmt: skip
        blocks.append(
            Block("text", text=f"{timing.label}: median {mode} step (ms) per batch size.")
        )
        blocks.append(
            Block("table", headers=["Backbone", "Size", *[f"bs {b}" for b in batches]], rows=table)
        )
    return blocks


def _backbone_section(inputs: Inputs, figures_dir: Path, blocks: list[Block]) -> None:
    tables = inputs.tables("backbone")
    if not tables and not inputs.timings:
        return
    blocks.append(Block("heading", text="Backbones: speed beside quality"))
    timing = [(t.label, _timing_rows(t)) for t in inputs.timings if _timing_rows(t)]
    quality = [(t.label, _rows_at_half(t)) for t in tables]
    if timing or quality:
        path = figures.plot_backbones(timing, quality, figures_dir / "backbones.png")
        blocks.append(Block("figure", text="Step time against batch size (top) beside test "
                                            "accuracy, recall and F1 at threshold 0.5 (bottom).",
                            path=f"figures/{path.name}"))  # fmt: skip
    if tables:
        blocks.append(_comparison(tables))
    for timing_table in inputs.timings:
        blocks.extend(_timing_block(timing_table))
    _pareto_section(inputs, tables, figures_dir, blocks)


def _pareto_section(
    inputs: Inputs, tables: list[ExperimentTable], figures_dir: Path, blocks: list[Block]
) -> None:
    own = [t for t in tables if t.source != "seed"]
    series = []
    for table in own:
        points = []
        for r in _rows_at_half(table):
            x = _num(r.get("epoch_s_median_after_first")) or _num(r.get("s_per_epoch"))
            y = _num(r.get("accuracy_pct"))
            if x is not None and y is not None:
                points.append((r["backbone"], x, y))
        if points:
            series.append((table.label, points))
    if series:
        path = figures.plot_pareto(
            series,
            figures_dir / "pareto_epoch.png",
            xlabel="Training time per epoch (s; later epochs when there are several)",
            title="Speed against accuracy, same run",
        )
        blocks.append(Block("figure", text="Each backbone's measured epoch time against its test "
                                            "accuracy (0.5); ringed points form the Pareto front "
                                            "(nothing else is both faster and more accurate).",
                            path=f"figures/{path.name}"))  # fmt: skip
    seed_quality = next((t for t in tables if t.source == "seed"), None)
    step_series = []
    for timing in inputs.timings:
        quality = seed_quality if timing.source == "seed" else (own[0] if own else seed_quality)
        if quality is None:
            continue
        accuracy = {r["backbone"]: _num(r.get("accuracy_pct")) for r in _rows_at_half(quality)}
        rows = _timing_rows(timing)
        points = []
        for name in dict.fromkeys(r["backbone"] for r in rows):
            mine = {int(r["batch_size"]): _num(r["step_s"]) for r in rows if r["backbone"] == name}
            batch = STEP_BATCH if STEP_BATCH in mine else min(mine)
            if accuracy.get(name) is not None:
                points.append((name, 1000 * mine[batch] / batch, accuracy[name]))
        if points:
            label = (
                timing.label
                if timing.source == quality.source
                else f"time: {timing.label}; accuracy: {quality.label}"
            )
            step_series.append((label, points))
    if step_series:
        path = figures.plot_pareto(
            step_series,
            figures_dir / "pareto_step.png",
            xlabel=f"Training time per image at batch {STEP_BATCH} (ms)",
            title="Speed against accuracy, timing runs",
        )
        blocks.append(Block("figure", text="Training step time per image (from the timing "
                                            "results) against test accuracy; Pareto front ringed.",
                            path=f"figures/{path.name}"))  # fmt: skip


def _threshold_section(inputs: Inputs, figures_dir: Path, blocks: list[Block]) -> None:
    tables = inputs.tables("threshold")
    if not tables:
        return
    blocks.append(Block("heading", text="Decision threshold: repeated runs"))
    series = [(t.label, metrics.summarize_runs(t.ok_rows, by=("threshold",))) for t in tables]
    series = [(label, rows) for label, rows in series if rows]
    if not series:
        return
    path = figures.plot_thresholds(series, figures_dir / "thresholds.png")
    blocks.append(Block("figure", text="Mean over runs with a ± one sample sd band.",
                        path=f"figures/{path.name}"))  # fmt: skip
    headers = ["Threshold"]
    columns = []
    for metric, name in (("accuracy_pct", "Accuracy %"), ("recall_pct", "Recall %"),
                         ("precision_pct", "Precision %"), ("f1", "F1")):  # fmt: skip
        for label, rows in series:
            if any(f"{metric}_mean" in r for r in rows):
                headers.append(f"{name} ({label})")
                columns.append((label, metric))
    thresholds = sorted({float(r["threshold"]) for _, rows in series for r in rows})
    lookup = {(label, float(r["threshold"])): r for label, rows in series for r in rows}
    table = []
    for t in thresholds:
        line = [f"{t:.1f}"]
        for label, metric in columns:
            r = lookup.get((label, t))
            if r is None or f"{metric}_mean" not in r:
                line.append("–")
            else:
                digits = 3
                line.append(metrics.format_mean_sd(r[f"{metric}_mean"], r[f"{metric}_sd"], digits))
        table.append(line)
    runs = ", ".join(f"{label}: {max(r['runs'] for r in rows)} runs" for label, rows in series)
    blocks.append(Block("text", text=f"Mean ± sample sd (ddof=1) over runs ({runs})."))
    blocks.append(Block("table", headers=headers, rows=table))


def _variant_section(
    inputs: Inputs, name: str, title: str, figures_dir: Path, blocks: list[Block]
) -> None:
    tables = inputs.tables(name)
    if not tables:
        return
    blocks.append(Block("heading", text=title))
    path = figures.plot_variants(
        [(t.label, _rows_at_half(t)) for t in tables], figures_dir / f"{name}.png"
    )
    blocks.append(Block("figure", text=f"{title}: accuracy, recall and F1 at threshold 0.5.",
                        path=f"figures/{path.name}"))  # fmt: skip
    blocks.append(_comparison(tables))


def _confusion_section(inputs: Inputs, figures_dir: Path, blocks: list[Block]) -> None:
    matrices: list[tuple[str, list[list[int]]]] = []
    for table in inputs.experiments:
        if table.source == "seed":
            continue
        seen = set()
        for r in table.ok_rows:
            if r["row"] in seen or any(r.get(k) is None for k in ("tp", "fp", "tn", "fn")):
                continue
            if _num(r.get("threshold")) not in (None, 0.5) and not table.name == "threshold":
                continue
            seen.add(r["row"])
            matrix = _confusion_at_half(table, r)
            matrices.append((f"{table.name}: {r['row']}", matrix))
    for run in inputs.runs:
        if run.confusion.get("matrix"):
            matrices.append((run.label, run.confusion["matrix"]))
    if not matrices:
        return
    blocks.append(Block("heading", text="Confusion matrices at threshold 0.5"))
    shown = matrices[:MAX_CONFUSIONS]
    path = figures.plot_confusions(shown, figures_dir / "confusion.png")
    note = "Rows: actual class; columns: predicted class; positive = defect."
    if len(matrices) > len(shown):
        note += f" First {len(shown)} of {len(matrices)}."
    blocks.append(Block("figure", text=note, path=f"figures/{path.name}"))


def _confusion_at_half(table: ExperimentTable, row: dict[str, Any]) -> list[list[int]]:
    """The row's counts at 0.5: its own when the row is at 0.5, else the run's confusion.json."""
    if _num(row.get("threshold")) == 0.5:
        return [[int(row["tn"]), int(row["fp"])], [int(row["fn"]), int(row["tp"])]]
    half = [r for r in table.ok_rows if r["row"] == row["row"] and _num(r.get("threshold")) == 0.5]
    if half:
        return _confusion_at_half(table, half[0])
    import json

    path = table.folder / str(row.get("run_dir") or "") / "confusion.json"
    try:
        return json.loads(path.read_text())["matrix"]
    except (OSError, ValueError, KeyError):
        return [[int(row["tn"]), int(row["fp"])], [int(row["fn"]), int(row["tp"])]]


def _runs_section(inputs: Inputs, figures_dir: Path, blocks: list[Block]) -> None:
    if not inputs.runs:
        return
    blocks.append(Block("heading", text="Training runs"))
    for run in inputs.runs:
        blocks.append(Block("heading", text=run.label, level=3))
        timing = run.run.get("timing", {})
        blocks.append(Block("text", text=(
            f"Trained {timing.get('epochs')} epoch(s) in {_fmt(_num(timing.get('train_s')), 1)} s "
            f"(first epoch {_fmt(_num(timing.get('epoch_s_first')), 1)} s, including tracing); "
            f"best epoch by validation loss: {run.run.get('best_epoch')}."
        )))  # fmt: skip
        if run.sweep:
            blocks.append(Block(
                "table",
                headers=["Threshold", "TP", "FP", "TN", "FN", "Accuracy %", "Recall %",
                         "Precision %", "F1"],
                rows=[[_fmt(r["threshold"], 1), r["tp"], r["fp"], r["tn"], r["fn"],
                       _fmt(r["accuracy_pct"]), _fmt(r["recall_pct"]), _fmt(r["precision_pct"]),
                       _fmt(r["f1"], 3)] for r in run.sweep],
            ))  # fmt: skip
        curves = run.folder / "curves.png"
        if curves.is_file():
            target = figures_dir / f"curves-{_slug(run.label)}.png"
            shutil.copyfile(curves, target)
            blocks.append(Block("figure", text="Training curves.", path=f"figures/{target.name}"))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:80]


# ---------------------------------------------------------------------------------------------
# rendering


def build_blocks(inputs: Inputs, figures_dir: Path) -> list[Block]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    blocks = [Block("heading", text="castbench report", level=1)]
    blocks.append(Block("text", text="Inputs:"))
    blocks.append(Block("table", headers=["Folder", "Holds"],
                        rows=[[str(f), what] for f, what in inputs.folders]))  # fmt: skip
    blocks.append(Block("text", text=(
        "Positive class = defect. Accuracy, recall and precision in %, F1 in 0–1, at decision "
        "threshold 0.5 unless a table says otherwise. The seed's numbers come from its slides "
        "(one run per configuration; its input size 512, NASNetMobile 224)."
    )))  # fmt: skip
    _backbone_section(inputs, figures_dir, blocks)
    _threshold_section(inputs, figures_dir, blocks)
    _variant_section(inputs, "architecture", "Architecture (seed Part 1)", figures_dir, blocks)
    _variant_section(inputs, "augmentation", "Augmentation (seed Part 2)", figures_dir, blocks)
    _confusion_section(inputs, figures_dir, blocks)
    _runs_section(inputs, figures_dir, blocks)
    return blocks


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            out.append(f"{'#' * block.level} {block.text}\n")
        elif block.kind == "text":
            out.append(f"{block.text}\n")
        elif block.kind == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "|".join("---" for _ in block.headers) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
            out.append("")
        elif block.kind == "figure":
            out.append(f"![{block.text}]({block.path})\n")
            out.append(f"*{block.text}*\n")
    return "\n".join(out)


_CSS = """
body { font-family: sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em;
       font-size: 16px; color: #111; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 14px; }
th, td { border: 1px solid #999; padding: 3px 8px; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } figure { margin: 1em 0 2em; }
figcaption { font-style: italic; }
@media print { img { max-width: 100%; page-break-inside: avoid; } }
"""


def to_html(blocks: Sequence[Block]) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>castbench report</title>", f"<style>{_CSS}</style></head><body>"]  # fmt: skip
    for block in blocks:
        if block.kind == "heading":
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif block.kind == "text":
            out.append(f"<p>{esc(block.text)}</p>")
        elif block.kind == "table":
            out.append("<table><thead><tr>")
            out.append("".join(f"<th>{esc(str(h))}</th>" for h in block.headers))
            out.append("</tr></thead><tbody>")
            for row in block.rows:
                out.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
        elif block.kind == "figure":
            out.append(f'<figure><img src="{esc(block.path)}" alt="{esc(block.text)}">'
                       f"<figcaption>{esc(block.text)}</figcaption></figure>")  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out) + "\n"
