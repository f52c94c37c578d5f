"""The seed study's accuracy experiments, as data, and the runner that fills their tables.

``grids`` holds the grids as data, ``plan`` turns a grid and the command line's settings into
training configurations, ``runner`` trains what a folder lacks, ``tables`` writes the tables and
``seed`` puts the seed's own numbers in the same layout.

Four grids, each one tidy table (``<name>.csv`` + ``<name>.json`` in the output folder, one row
per configuration and decision threshold) with the seed's columns (accuracy %, recall %, F1)
plus precision and specificity, the confusion counts, and the training wall time and seconds per
epoch of the run behind the row:

- ``architecture`` (seed Part 1): EfficientNetB4 + dense head + batch 4, and its ablations:
  no Dense(1024), no dropout, augmentation (default / additional), batch 8.
- ``augmentation`` (seed Part 2): the eleven augmentation presets on EfficientNetB4 + dense head
  + batch 4.
- ``backbone`` (seed Part 3): the ten backbones with the GAP + Dense(1) head, batch 4.
- ``threshold`` (seed Part 5): EfficientNetB4 + dense head + ``no-rotation`` augmentation +
  batch 4, R runs with different seeds, thresholds 0.1–0.5; ``threshold_summary.csv`` holds the
  mean ± sample sd per threshold.

``--runs R`` repeats every row of any grid R times with seeds base, base + 1, ..., base + R - 1
(rows ``<row>-run01`` ...; the table's ``run`` and ``seed`` columns say which).

Each finished configuration is written at once (temporary file + ``os.replace``); ``--resume``
skips the configurations already in the folder. The full per-run outputs of ``castbench train``
(metrics per threshold, confusion matrix, curves, weights) sit under ``runs/<row>/``.
"""

from castbench.experiments.grids import (
    AUGMENTATION_VARIANTS,
    DEFAULT_RUNS,
    EXPERIMENTS,
    Experiment,
    Row,
    get,
    repeated,
)
from castbench.experiments.plan import Settings, input_size_for, plan
from castbench.experiments.runner import failed_rows, run_experiment
from castbench.experiments.seed import seed_reference_rows, write_seed_reference
from castbench.experiments.tables import (
    COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    read_table,
    summary_rows,
    table_rows,
    write_summary,
    write_table,
)

__all__ = [
    "AUGMENTATION_VARIANTS",
    "COLUMNS",
    "DEFAULT_RUNS",
    "EXPERIMENTS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Experiment",
    "Row",
    "Settings",
    "failed_rows",
    "get",
    "input_size_for",
    "plan",
    "read_table",
    "repeated",
    "run_experiment",
    "seed_reference_rows",
    "summary_rows",
    "table_rows",
    "write_seed_reference",
    "write_summary",
    "write_table",
]
