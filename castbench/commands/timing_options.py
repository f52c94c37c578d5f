"""The options of ``castbench timing`` beyond the matrix (``matrix_options``), as data: which
step the rows describe, where inference runs, how long an epoch is, where results go and how a
long sweep survives, and tf.distribute."""

from __future__ import annotations

import argparse
from pathlib import Path

from castbench.commands.matrix_options import positive_float, positive_int
from castbench.commands.options import option
from castbench.commands.registry import HEAD_OPTION, TRAINABLE_OPTION
from castbench.timing.config import (
    PRECISIONS,
    RUNTIMES,
    SEED_TRAIN_IMAGES,
    SERVING_ONLY,
    STEP_CHOICES,
    STRATEGIES,
    serving_takers,
)
from castbench.timing.xla_options import MATMUL_PRECISIONS

SERVING_TAKERS = {p: ", ".join(serving_takers(p)) for p in SERVING_ONLY}
# Where inference runs: Keras, or the exported model in a serving runtime.
RUNTIME_OPTIONS = (
    option(
        "--runtime",
        nargs="+",
        choices=RUNTIMES,
        default=["keras"],
        help="where inference runs: keras (default) and/or a serving runtime timing the model "
        "exported through Keras (onnxruntime, litert, openvino; the serve extra), after its "
        "outputs match Keras's within 1e-4",
    ),
    option(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="CPU threads of a serving runtime (default: one per usable core); Keras rows use "
        "the backend's own thread pools",
    ),
    option(
        "--artifacts",
        type=Path,
        default=None,
        metavar="DIR",
        help="reuse the artifacts castbench export wrote into DIR where their records match the "
        "backbone, size, head, weights and versions; export the others into DIR (default: a "
        "temporary folder per backbone)",
    ),
    option(
        "--reuse-only",
        action="store_true",
        help="with --artifacts: export nothing; a missing or non-matching artifact is an error",
    ),
)


# Which step the rows describe, and how steps are compiled.
STEP_OPTIONS = (
    option(
        "--step",
        choices=STEP_CHOICES,
        default="compiled",
        help="the step kind to time: compiled (default; the step as a training loop runs it, "
        "state kept on the device), api (train_on_batch / predict_on_batch per call), or both "
        "(rows describe the compiled step and also carry the API step's median and "
        "framework_overhead_ms; the timed phase takes twice as long)",
    ),
    option(
        "--compile-cache",
        default=None,
        metavar="DIR|off",
        help="JAX's persistent compilation cache (default under JAX: "
        "~/.cache/castbench/xla); rows record compile_cache_hit",
    ),
    option(
        "--compile-jobs",
        type=int,
        default=None,
        metavar="N",
        help="under JAX, compile the matrix ahead of the timed phase in N processes "
        "(default: the host's cores within its memory, none on 2 cores or fewer or with a "
        "GPU; 0: off)",
    ),
    option(
        "--matmul-precision",
        choices=MATMUL_PRECISIONS,
        default=None,
        help="under JAX, the precision of float32 matmuls and convolutions: default (JAX's: "
        "TF32 on Ampere and Hopper GPUs, plain float32 on a CPU), high (TF32 on those GPUs "
        "too), highest (full float32). Default: JAX's own setting "
        "(JAX_DEFAULT_MATMUL_PRECISION, else default); run.json and every row record it",
    ),
    option(
        "--fast-compile",
        action="store_true",
        help="under JAX on a GPU, compile without autotuning convolutions and GEMMs "
        "(XLA_FLAGS --xla_gpu_autotune_level=0): compiles faster, steps may be slower; "
        "recorded in run.json (no effect on a CPU)",
    ),
    option(
        "--precision",
        choices=(*PRECISIONS, *SERVING_ONLY),
        default="float32",
        help="Keras: float32 (default), mixed_float16, mixed_bfloat16; serving runtimes: "
        f"float32, {', '.join(f'{p} ({SERVING_TAKERS[p]})' for p in SERVING_ONLY)}. int8 is "
        "quantized after export, calibrated on images of the --data set's training split; "
        "litert float16 stores float16 weights; openvino bfloat16 and float16 compile the "
        "float32 artifact at that inference precision (a CPU that would run another is refused)",
    ),
    option(
        "--calibration-images",
        type=positive_int,
        default=100,
        metavar="N",
        help="int8: how many training-split images of --data calibrate (default 100)",
    ),
    option(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA compilation on/off (default: Keras decides)",
    ),
    HEAD_OPTION,
    option("--weights", default="none", help="none | imagenet | PATH"),
    TRAINABLE_OPTION,
)


# How long an epoch is, and the optional measured epoch through the input pipeline.
EPOCH_OPTIONS = (
    option(
        "--n-train",
        type=positive_int,
        default=None,
        help=f"training images per epoch (default: the seed's "
        f"{SEED_TRAIN_IMAGES:,}, or the --data set's training split)",
    ),
    option(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help="a casting-layout data set: epochs count its training split (less validation); "
        "int8 calibrates on it; with a --weights file, serving rows score its test split",
    ),
    option(
        "--epoch",
        action="store_true",
        help="also measure one real training epoch through the input pipeline (the --data set, "
        "or the built-in synthetic set) and report how long the model waited for data",
    ),
    option(
        "--aug",
        default="none",
        metavar="PRESET",
        help="augmentation preset for the measured epoch (default none)",
    ),
)


# Where results go and how a long sweep survives: resume, isolation, limits, shards.
RUN_OPTIONS = (
    option(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: results/timing-<date>-<time>)",
    ),
    option(
        "--resume",
        action="store_true",
        help="keep rows already in --out and measure only what is missing (refused when the "
        "folder's rows come from another backend, device, castbench or Keras version)",
    ),
    option(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="measure every configuration in N fresh processes, one whole sweep after another "
        "(as pyperf does); rows carry each process's median and their spread, and compare "
        "tests between processes (default 1)",
    ),
    option(
        "--isolate",
        choices=("group", "config", "none"),
        default="group",
        help="where measurements run: one separate process per model group (default; a "
        "backbone's configurations share one model), one per configuration, or none (this "
        "process). A process that crashes, is killed or hangs costs only the configuration in "
        "hand: it gets an error/oom row and a fresh process goes on",
    ),
    option(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="per-configuration limit (a process's model build counts towards its first "
        "configuration; its Python and TensorFlow start-up do not); a configuration over it "
        "gets an error row",
    ),
    option(
        "--oom-retry",
        action="store_true",
        help="retry a configuration that runs out of memory at half the batch size, down to 1 "
        "(the row records retried_from_batch)",
    ),
    option(
        "--shard",
        default=None,
        metavar="I/N",
        help="run shard I of N (e.g. 2/3): whole backbone groups, balanced by estimated cost; "
        "join the shards' folders with castbench merge",
    ),
)


# tf.distribute strategies and the profiler.
DISTRIBUTION_OPTIONS = (
    option(
        "--strategy",
        nargs="+",
        choices=STRATEGIES,
        default=["default"],
        help="tf.distribute strategies to time (TensorFlow only): default (one device), "
        "mirrored (every visible device; --replicas N logical CPUs without a GPU), multiworker "
        "(MultiWorkerMirroredStrategy from TF_CONFIG, or --workers N local processes). --batch "
        "is per replica; give 'default' too for scaling_efficiency",
    ),
    option(
        "--replicas",
        type=int,
        default=None,
        metavar="N",
        help="mirrored: use N devices (N logical CPU devices without a GPU)",
    ),
    option(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="multiworker: start N local worker processes on 127.0.0.1; the "
        "chief's rows go to --out, every worker's to OUT/workers/",
    ),
    option(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="after each configuration's timed steps, trace a few more with the "
        "backend's profiler into DIR/<configuration>",
    ),
)
