"""``castbench timing``: the main job."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from castbench.commands.matrix_options import MATRIX_OPTIONS, summary_table
from castbench.commands.options import JSON_ROWS, NO_PLOTS, add_command
from castbench.commands.output import print_json
from castbench.commands.plot import draw
from castbench.commands.timing_options import (
    DISTRIBUTION_OPTIONS,
    EPOCH_OPTIONS,
    RUN_OPTIONS,
    RUNTIME_OPTIONS,
    STEP_OPTIONS,
)
from castbench.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "timing",
        "time training and inference steps and epochs (the main job)",
        "Build each backbone at its native resolution (or --size) and time "
        "training and inference steps on a fixed batch, with warm-up and compile time kept "
        "apart. Time per epoch = ceil(n_train / batch) x median step. Rows are written to "
        "OUT/timing.csv and OUT/timing.json as each is measured; plots to OUT/plots/.",
        [
            *MATRIX_OPTIONS,
            *STEP_OPTIONS,
            *RUNTIME_OPTIONS,
            *EPOCH_OPTIONS,
            *RUN_OPTIONS,
            *DISTRIBUTION_OPTIONS,
            NO_PLOTS,
            JSON_ROWS,
        ],
        func=run_timing,
        # this process starts a framework only when it measures (--isolate none)
        needs_backend=False,
    )


def epoch_inputs(args: argparse.Namespace) -> dict:
    """Training-set size for epochs and, with --epoch, the data set to run one through."""
    from castbench.augment import get_preset

    get_preset(args.aug)  # an unknown preset fails now, not after the first model
    fields: dict = {"augment": args.aug}
    data = args.data
    if data is None and args.epoch:
        from castbench.data import default_synthetic_set

        data = default_synthetic_set()
    if data is not None:
        from castbench.timing.epoch import training_split

        fields["n_train"] = len(training_split(str(data)))
        if args.epoch:
            fields["epoch_data"] = str(Path(data).resolve())
    if args.n_train:
        fields["n_train"] = args.n_train
    return fields


def serving_inputs(args: argparse.Namespace) -> dict:
    """Where serving runtimes keep and reuse artifacts, what int8 calibrates on (the --data
    set's training split) and, with trained --weights, what runtime rows score (its test split)."""
    from castbench.spec import weights_choice
    from castbench.timing.config import CALIBRATED

    if args.artifacts and args.artifacts.exists() and not args.artifacts.is_dir():
        raise UsageError(f"--artifacts must be a folder: {args.artifacts}")
    folder = str(args.artifacts.resolve()) if args.artifacts else None
    fields: dict = {"threads": args.threads, "reuse_only": args.reuse_only, "artifacts": folder}
    if args.precision in CALIBRATED and args.data is not None:
        fields.update(calibration_data=str(args.data.resolve()),
                      calibration_images=args.calibration_images)  # fmt: skip
    if args.data is not None and weights_choice(args.weights) == "file":  # a trained model
        fields["test_data"] = str(args.data.resolve())  # scored only by runtime rows
    return fields


def run_timing(args: argparse.Namespace) -> int:
    from castbench.timing.config import build_matrix

    common = dict(steps=args.steps, warmup=args.warmup, precision=args.precision,
                  jit_compile=args.jit, head=args.head, weights=args.weights,
                  trainable=args.trainable, step=args.step)  # fmt: skip
    common.update(epoch_inputs(args), **serving_inputs(args))
    modes = serving_modes(args.mode, args.runtime, args.precision)
    from castbench.runtime import keras_backend_name
    from castbench.timing.compile_cache import CompileSettings
    from castbench.timing.xla_options import XlaOptions

    backend = keras_backend_name()
    xla = XlaOptions.from_options(args.matmul_precision, args.fast_compile, backend)
    compile_settings = CompileSettings.from_options(args.compile_cache, args.compile_jobs,
                                                    backend, xla)  # fmt: skip
    compile_settings.export()
    from castbench.timing.distributed.plan import plan

    distribution = plan(args.strategy, args.replicas, args.workers, args.profile,
                        backend)  # fmt: skip
    common["profile"] = distribution.profile
    if distribution.in_process_multiworker:  # this process is one worker of the cluster
        args.isolate = "none"
    # Checked before anything slow starts: names, sizes, batch sizes, the shard.
    matrix = [config for variant in distribution.variants
              for config in build_matrix(args.backbones, args.batch, modes, args.size,
                                         runtimes=args.runtime, **common,
                                         **variant)]  # fmt: skip
    if args.reuse_only:
        from castbench.serving.artifacts import check_reusable

        check_reusable(matrix)
    from castbench.timing.run import SweepSettings, run_timing_sweep
    from castbench.timing.shard import select

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("results") / f"timing-{stamp}"
    settings = SweepSettings(isolate=args.isolate, argv=tuple(args.argv), timeout=args.timeout,
                             resume=args.resume, oom_retry=args.oom_retry, shard=args.shard,
                             compile=compile_settings, processes=args.processes)  # fmt: skip
    rows = run_timing_sweep(matrix, select(matrix, args.shard), out, distribution, settings)
    if not args.no_plots:
        for path in draw(out, out / "plots", seed=False):
            print(f"plot: {path}", file=sys.stderr)
    if args.json:
        print_json(rows)
    else:
        print(summary_table(rows))
    from castbench.results import TIMED_STATUSES

    failed = [r for r in rows if r["status"] not in TIMED_STATUSES]
    return 1 if failed else 0


def serving_modes(modes: list[str] | None, runtimes: list[str], precision: str) -> list[str]:
    """The modes to time: as given, else :func:`default_modes`. Serving runtimes must be
    installed: checked now, before anything slow starts."""
    from castbench.serving.registry import require_runtime
    from castbench.timing.config import default_modes

    for name in runtimes:
        if name != "keras":
            require_runtime(name, precision)
    return modes or default_modes(runtimes)
