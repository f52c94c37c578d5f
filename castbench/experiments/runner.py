"""Train the rows of a grid that its folder does not hold yet, writing the table after each."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from castbench.errors import UsageError, classify_failure
from castbench.experiments.grids import Experiment, Row, get
from castbench.experiments.plan import Settings, plan
from castbench.experiments.tables import error_row, read_table, table_rows, write_table
from castbench.training import TrainConfig, TrainResult

Trainer = Callable[..., TrainResult]
Planned = list[tuple[Row, TrainConfig]]


def run_experiment(
    name: str,
    out: str | os.PathLike,
    settings: Settings,
    resume: bool = False,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    trainer: Trainer | None = None,
) -> list[dict[str, Any]]:
    """Train every row of the grid not yet in ``out``; return the table's rows."""
    experiment = get(name)
    settings.validate(experiment)
    out_dir = Path(out)
    planned = select(plan(experiment, settings), only, experiment)
    for _, config in planned:
        config.spec.validate()
    rows = finished_rows(out_dir, experiment, settings, resume)
    if trainer is None:
        from castbench.training import train as trainer

    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir, experiment, settings, rows)
    done = {r["row"] for r in rows}
    todo = [(row, config) for row, config in planned if row.key not in done]
    log(
        f"experiment {experiment.describe()}; {settings.recipe} recipe, batch {settings.batch}, "
        f"{settings.epochs} epoch(s), size {settings.size or 'native'}, "
        f"{settings.runs_for(experiment)} run(s): {len(planned)} row(s), "
        f"{len(planned) - len(todo)} already done, {len(todo)} to train -> {out_dir}"
    )
    started = time.perf_counter()
    for index, (row, config) in enumerate(todo, 1):
        log(f"[{index}/{len(todo)}] {experiment.name} / {row.key}: {row.variant}")
        new = train_row(experiment, row, config, out_dir, trainer, log, resume)
        rows = [r for r in rows if r["row"] != row.key] + new
        rows.sort(key=_order_in(planned))
        write_table(out_dir, experiment, settings, rows)
    log(f"experiment {experiment.name} done in {time.perf_counter() - started:.1f} s")
    return rows


def select(planned: Planned, only: Sequence[str] | None, experiment: Experiment) -> Planned:
    """The rows ``--only`` names (a configuration's key names all its runs); all without it."""
    if not only:
        return planned
    wanted = {w.strip().lower() for item in only for w in item.split(",") if w.strip()}
    known = {row.key for row, _ in planned} | {row.config_key for row, _ in planned}
    unknown = wanted - known
    if unknown:
        choices = dict.fromkeys(row.config_key or row.key for row, _ in planned)
        raise UsageError(
            f"unknown row(s) {', '.join(sorted(unknown))} in {experiment.name}; "
            f"choose from: {', '.join(choices)}"
        )
    return [(r, c) for r, c in planned if r.key in wanted or r.config_key in wanted]


def finished_rows(
    out_dir: Path, experiment: Experiment, settings: Settings, resume: bool
) -> list[dict[str, Any]]:
    """The folder's finished rows (failed ones are dropped, to be retried); refuses a folder
    that holds results unless resuming, and one trained with other settings."""
    old_settings, rows = read_table(out_dir, experiment.name)
    if rows and not resume:
        raise UsageError(
            f"{out_dir} already holds {experiment.name} results; pass --resume to continue "
            "them or choose another --out"
        )
    if rows and old_settings:
        old_settings = SETTINGS_BEFORE_THEY_WERE_RECORDED | old_settings
        differ = {
            k: (old_settings.get(k), v)
            for k, v in settings.comparable().items()
            if old_settings.get(k) != v
        }
        if differ:
            detail = ", ".join(f"{k} {a!r} there, {b!r} now" for k, (a, b) in differ.items())
            raise UsageError(f"cannot resume {out_dir}: settings differ ({detail})")
    return [r for r in rows if r.get("status") == "ok"]


# Settings added to the tables after some were written, with the value those tables ran with.
SETTINGS_BEFORE_THEY_WERE_RECORDED = {
    "backbone": None,
    "head": None,
    "augment": "none",
    "augment_override": None,
    "backend": "tensorflow",  # the only backend castbench trained under then
}


def train_row(
    experiment: Experiment,
    row: Row,
    config: TrainConfig,
    out_dir: Path,
    trainer: Trainer,
    log: Callable[[str], None],
    resume: bool = False,
) -> list[dict[str, Any]]:
    """The table rows of one trained configuration, or one error row when training failed.
    Resuming, a row interrupted mid-run goes on from its last finished epoch."""
    run_dir = Path("runs") / row.key
    try:
        result = trainer(config, out_dir / run_dir, log=log, resume=resume)
    except UsageError:
        raise
    except Exception as exc:  # one failed row must not lose the others
        message = classify_failure(exc)[1]
        log(f"  row {row.key} failed: {message}")
        return [error_row(experiment, row, config, message)]
    return table_rows(experiment, row, config, result, str(run_dir))


def _order_in(planned: Planned):
    position = {row.key: i for i, (row, _) in enumerate(planned)}

    def key(r: dict[str, Any]) -> tuple[float, float]:
        return (position.get(r["row"], math.inf), float(r.get("threshold") or 0))

    return key


def failed_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") != "ok"]
