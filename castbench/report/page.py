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

from castbench.report import cells, figures, significance
from castbench.report.load import ExperimentTable, Inputs, TimingTable
from castbench.report.load import finite_number as _num

MAX_CONFUSIONS = 24
STEP_BATCH = 4  # the batch size the speed–accuracy plot reads its step time at
CELL_NOTE = (
    "A cell is one configuration over its runs: one run shows its value; several show mean ± "
    "sample sd (ddof=1) [95 % t interval of the mean, clipped to the metric's range]."
)
SIGNIFICANCE_NOTE = (
    "McNemar's exact test on the {images} shared test images at threshold 0.5, from each run's "
    "predictions.csv. Run r of A is paired with run r of B ({runs} paired runs per pair) and "
    "the discordant counts b (A right, B wrong) and c (A wrong, B right) are pooled over the "
    "paired runs; pooling counts every (image, run) as independent, so with several runs the "
    "p-values are optimistic. p-values are Holm-adjusted for the {pairs} pairs; * marks a pair "
    "whose adjusted p is below {alpha}. The accuracy difference carries a bootstrap interval "
    "that resamples test images with all their runs, which does not overstate the evidence."
)


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


def _comparison(tables: Sequence[ExperimentTable]) -> list[Block]:
    """One row per configuration (cell at 0.5, joined across sources by variant): each
    source's metrics side by side as mean ± sd [95 % CI] over its runs, castbench's timings,
    and a flag where runs predict one class."""
    order: list[str] = []
    info: dict[str, dict[str, Any]] = {}
    by_source: list[dict[str, dict[str, Any]]] = []
    for table in tables:
        found = {}
        for cell in cells.table_cells(table):
            found[cell["variant"]] = cell
            if cell["variant"] not in order:
                order.append(cell["variant"])
            if table.source != "seed" or cell["variant"] not in info:
                info[cell["variant"]] = cell
        by_source.append(found)
    metric_columns = _quality_columns(tables)
    own = [t for t in tables if t.source != "seed"]
    headers = ["Variant", "Backbone", "Size", "Head", "Augment", "Batch"]
    headers += [f"Runs ({t.label})" for t in own]
    headers += [name for _, name, _ in metric_columns]
    if own:
        headers += ["Train s", "s / epoch", "Params", "Flags"]
    rows = []
    for item in order:
        base = info[item]
        line = [base.get("variant"), base.get("backbone"), base.get("input_size"),
                base.get("head"), base.get("augment"), base.get("batch_size")]  # fmt: skip
        line += [by_source[tables.index(t)].get(item, {}).get("runs", "–") for t in own]
        for metric, _, table_index in metric_columns:
            cell = by_source[table_index].get(item)
            line.append(cells.format_cell(cell, metric, 3 if metric == "f1" else 2))
        if own:
            mine = by_source[tables.index(own[0])].get(item, {})
            flags = [cells.one_class_note(by_source[tables.index(t)].get(item, {})) for t in own]
            line += [
                _fmt(_num(mine.get("train_s_mean")), 1),
                _fmt(_num(mine.get("s_per_epoch_mean")), 1),
                f"{int(mine['params_total']):,}" if mine.get("params_total") else "–",
                "; ".join(flag for flag in flags if flag),
            ]
        rows.append(line)
    return [Block("text", text=CELL_NOTE), Block("table", headers=headers, rows=rows)]


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
            if figures.series_of(r) not in names:
                names.append(figures.series_of(r))
        table = []
        for name in names:
            cells = {int(r["batch_size"]): r for r in rows if figures.series_of(r) == name}
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
    quality = [(t.label, cells.table_cells(t)) for t in tables]
    if timing or quality:
        path = figures.plot_backbones(timing, quality, figures_dir / "backbones.png")
        blocks.append(Block("figure", text="Step time against batch size (top) beside test "
                                            "accuracy, recall and F1 at threshold 0.5 (bottom; "
                                            "mean over runs, whiskers: 95 % t interval).",
                            path=f"figures/{path.name}"))  # fmt: skip
    if tables:
        blocks.extend(_comparison(tables))
    for timing_table in inputs.timings:
        blocks.extend(_timing_block(timing_table))
    _pareto_section(inputs, tables, figures_dir, blocks)
    for table in tables:
        if table.source != "seed":
            blocks.extend(_significance_blocks(table))


def _p_text(p_value: float) -> str:
    return "<0.001" if p_value < 0.001 else f"{p_value:.3g}"


def _significance_blocks(table: ExperimentTable) -> list[Block]:
    """The backbone × backbone matrix of Holm-adjusted McNemar p-values, then every pair."""
    result = significance.pairwise(table, cells.table_cells(table))
    if not result.pairs and not result.notes:
        return []
    blocks = [Block("heading", level=3, text=f"Pairwise significance ({table.label})")]
    if result.pairs:
        runs = sorted({p.runs for p in result.pairs})
        images = sorted({p.images for p in result.pairs})
        blocks.append(Block("text", text=SIGNIFICANCE_NOTE.format(
            runs="/".join(map(str, runs)), images="/".join(map(str, images)),
            pairs=len(result.pairs), alpha=significance.ALPHA)))  # fmt: skip
        shown = [n for n in result.names if any(n in (p.a, p.b) for p in result.pairs)]
        matrix = []
        for a in shown:
            line = [a]
            for b in shown:
                pair = result.between(a, b)
                line.append("–" if pair is None else
                            _p_text(pair.p_holm) + ("*" if pair.significant else ""))  # fmt: skip
            matrix.append(line)
        blocks.append(Block("table", headers=["Holm p", *shown], rows=matrix))
        blocks.append(Block("table", headers=[
            "A", "B", "Runs", "Images", "b (A only right)", "c (B only right)", "p", "Holm p",
            "Runs with p < 0.05", "Accuracy A − B (pp) [95 % CI]"], rows=[
            [p.a, p.b, p.runs, p.images, p.b_count, p.c_count, _p_text(p.p_value),
             _p_text(p.p_holm) + ("*" if p.significant else ""), f"{p.runs_significant}/{p.runs}",
             f"{p.difference_pp:+.2f} [{p.low_pp:+.2f}, {p.high_pp:+.2f}]"]
            for p in result.pairs]))  # fmt: skip
    blocks.extend(Block("text", text=note) for note in result.notes)
    return blocks


def _point_name(cell: dict[str, Any]) -> str:
    return f"{cell['backbone']} (one class)" if cell["one_class_runs"] else str(cell["backbone"])


def _cell_point(cell: dict[str, Any], x_column: str) -> figures.Point | None:
    x, y = _num(cell.get(f"{x_column}_mean")), _num(cell.get("accuracy_pct_mean"))
    if x is None or y is None:
        return None
    return figures.Point(
        _point_name(cell), x, y, cells.interval(cell, x_column),
        cells.interval(cell, "accuracy_pct"),
    )  # fmt: skip


def _pareto_section(
    inputs: Inputs, tables: list[ExperimentTable], figures_dir: Path, blocks: list[Block]
) -> None:
    own = [t for t in tables if t.source != "seed"]
    series = []
    for table in own:
        points = []
        for cell in cells.table_cells(table):
            later = cell.get("epoch_s_median_after_first_mean") is not None
            point = _cell_point(cell, "epoch_s_median_after_first" if later else "s_per_epoch")
            if point is not None:
                points.append(point)
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
                                            "accuracy (0.5), means over runs with 95 % t interval "
                                            "whiskers; ringed points form the Pareto front of the "
                                            "means (nothing else is both faster and more "
                                            "accurate).",
                            path=f"figures/{path.name}"))  # fmt: skip
    seed_quality = next((t for t in tables if t.source == "seed"), None)
    step_series = []
    for timing in inputs.timings:
        quality = seed_quality if timing.source == "seed" else (own[0] if own else seed_quality)
        if quality is None:
            continue
        accuracy = {c["backbone"]: c for c in cells.table_cells(quality)}
        rows = _timing_rows(timing)
        points = []
        for name in dict.fromkeys(figures.series_of(r) for r in rows):
            series = [r for r in rows if figures.series_of(r) == name]
            mine = {int(r["batch_size"]): _num(r["step_s"]) for r in series}
            batch = STEP_BATCH if STEP_BATCH in mine else min(mine)
            cell = accuracy.get(series[0]["backbone"])
            if cell is not None and cell.get("accuracy_pct_mean") is not None:
                points.append(figures.Point(_point_name(cell), 1000 * mine[batch] / batch,
                                            cell["accuracy_pct_mean"], None,
                                            cells.interval(cell, "accuracy_pct")))  # fmt: skip
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
                                            "results) against test accuracy (mean over runs, 95 % "
                                            "t interval whiskers); Pareto front ringed.",
                            path=f"figures/{path.name}"))  # fmt: skip


def _threshold_section(inputs: Inputs, figures_dir: Path, blocks: list[Block]) -> None:
    tables = inputs.tables("threshold")
    if not tables:
        return
    blocks.append(Block("heading", text="Decision threshold: repeated runs"))
    series = [(t.label, cells.table_cells(t, thresholds=None)) for t in tables]
    series = [(label, found) for label, found in series if found]
    if not series:
        return
    path = figures.plot_thresholds(series, figures_dir / "thresholds.png")
    blocks.append(Block("figure", text="Mean over runs with the 95 % t interval of the mean as "
                                        "a band.", path=f"figures/{path.name}"))  # fmt: skip
    headers = ["Threshold"]
    columns = []
    for metric, name in (("accuracy_pct", "Accuracy %"), ("recall_pct", "Recall %"),
                         ("precision_pct", "Precision %"), ("f1", "F1")):  # fmt: skip
        for label, found in series:
            if any(f"{metric}_mean" in c for c in found):
                headers.append(f"{name} ({label})")
                columns.append((label, metric))
    thresholds = sorted({float(c["threshold"]) for _, found in series for c in found})
    lookup = {(label, float(c["threshold"])): c for label, found in series for c in found}
    table = []
    for t in thresholds:
        line = [f"{t:.1f}"]
        line += [cells.format_cell(lookup.get((label, t)), metric, 3) for label, metric in columns]
        flags = [f"{label}: {note}" for label, found in series
                 if (note := cells.one_class_note(lookup.get((label, t)) or {}))]  # fmt: skip
        table.append([*line, "; ".join(flags)])
    runs = ", ".join(f"{label}: {max(c['runs'] for c in found)} runs" for label, found in series)
    blocks.append(Block("text", text=f"{CELL_NOTE} Runs: {runs}."))
    blocks.append(Block("table", headers=[*headers, "Flags"], rows=table))


def _variant_section(
    inputs: Inputs, name: str, title: str, figures_dir: Path, blocks: list[Block]
) -> None:
    tables = inputs.tables(name)
    if not tables:
        return
    blocks.append(Block("heading", text=title))
    path = figures.plot_variants(
        [(t.label, cells.table_cells(t)) for t in tables], figures_dir / f"{name}.png"
    )
    blocks.append(Block("figure", text=f"{title}: accuracy, recall and F1 at threshold 0.5 "
                                        "(mean over runs, whiskers: 95 % t interval).",
                        path=f"figures/{path.name}"))  # fmt: skip
    blocks.extend(_comparison(tables))


def _confusion_section(inputs: Inputs, figures_dir: Path, blocks: list[Block]) -> None:
    matrices: list[tuple[str, list[list[int]]]] = []
    for table in inputs.experiments:
        if table.source == "seed":
            continue
        for cell in cells.table_cells(table):
            members = cell["members"]
            if any(r.get(k) is None for r in members for k in cells.COUNTS):
                continue
            tp, fp, tn, fn = (sum(int(r[k]) for r in members) for k in cells.COUNTS)
            name = cell["row"] if len(members) == 1 else f"{cell['variant']}, {len(members)} runs"
            matrices.append((f"{table.name}: {name}", [[tn, fp], [fn, tp]]))
    for run in inputs.runs:
        if run.confusion.get("matrix"):
            matrices.append((run.label, run.confusion["matrix"]))
    if not matrices:
        return
    blocks.append(Block("heading", text="Confusion matrices at threshold 0.5"))
    shown = matrices[:MAX_CONFUSIONS]
    path = figures.plot_confusions(shown, figures_dir / "confusion.png")
    note = (
        "Rows: actual class; columns: predicted class; positive = defect. A configuration "
        "with several runs shows the counts summed over its runs."
    )
    if len(matrices) > len(shown):
        note += f" First {len(shown)} of {len(matrices)}."
    blocks.append(Block("figure", text=note, path=f"figures/{path.name}"))


def _one_class_warning(inputs: Inputs) -> Block | None:
    """One line naming every configuration (at 0.5) and training run whose predictions put all
    test images in one class."""
    flagged = []
    for table in inputs.experiments:
        flagged += [f"{table.name} / {c['variant']} ({cells.one_class_note(c)})"
                    for c in cells.table_cells(table) if c["one_class_runs"]]  # fmt: skip
    flagged += [run.label for run in inputs.runs if cells.predicts_one_class(run.confusion)]
    if not flagged:
        return None
    return Block("text", text=(
        "Warning: these models give every test image the same class at threshold 0.5, so their "
        "accuracy, recall and F1 only restate the class shares of the test split and say "
        "nothing about the backbone: " + "; ".join(flagged) + "."
    ))  # fmt: skip


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
    warning = _one_class_warning(inputs)
    if warning is not None:
        blocks.append(warning)
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
