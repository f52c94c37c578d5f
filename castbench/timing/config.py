"""One timing configuration, and the matrix a sweep covers."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

from castbench import backbones
from castbench.errors import UsageError
from castbench.spec import check_trainable

MODES = ("train", "infer")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multiworker")
# compiled: the step as a training loop runs it; api: train_on_batch / predict_on_batch
STEP_KINDS = ("compiled", "api")
# What --step accepts: one kind, or both (the row describes the compiled step and also carries
# the API step's median and the framework overhead between them)
STEP_CHOICES = (*STEP_KINDS, "both")
# Where an inference step runs: Keras itself, or an exported artifact in a serving runtime
# (castbench.serving). Named here, without importing any runtime, so the CLI checks names early.
RUNTIMES = ("keras", "onnxruntime", "litert", "openvino")
# The one table of the precisions each serving runtime takes: float32 as exported; int8
# quantized after export, calibrated on images of a data set's training split; LiteRT's float16
# (float16 weights, converted from the Keras model); OpenVINO's bfloat16 and float16 (the
# float32 artifact compiled at that inference precision). ONNX Runtime's CPU execution provider
# runs float16 nodes in float32 between casts and has no bfloat16 convolutions.
SERVING_PRECISIONS = {"onnxruntime": ("float32", "int8"),
                      "litert": ("float32", "float16", "int8"),
                      "openvino": ("float32", "bfloat16", "float16", "int8")}  # fmt: skip
SERVING_ONLY = ("int8", "float16", "bfloat16")  # serving runtimes' precisions Keras does not time
CALIBRATED = ("int8",)  # precisions calibrated on --data images
# why a runtime does not take a precision, where that is not plain
NOT_TAKEN = {
    ("onnxruntime", "float16"): "its CPU execution provider computes float16 nodes in float32 "
    "between casts",
    ("onnxruntime", "bfloat16"): "its CPU execution provider has no bfloat16 convolutions",
}
# The seed's 6,633 training images less ImageDataGenerator's validation_split=0.2, which it
# takes per class as int(n * 0.2): def_front 3,758 -> 3,007, ok_front 2,875 -> 2,300.
SEED_TRAIN_IMAGES = 5_307


def serving_takers(precision: str) -> list[str]:
    """The serving runtimes that take ``precision``."""
    return [runtime for runtime, taken in SERVING_PRECISIONS.items() if precision in taken]


def steps_per_epoch(n_train: int, global_batch: int) -> int:
    """Steps in one epoch: every image once, the last batch partial (the seed divided twice)."""
    return math.ceil(n_train / global_batch)


@dataclass(frozen=True)
class TimingConfig:
    """What one timing row measures."""

    backbone: str
    input_size: int
    batch_size: int
    mode: str = "train"
    precision: str = "float32"
    jit_compile: bool | None = None  # None: Keras decides ("auto")
    steps: int = 10
    warmup: int = 2
    n_train: int = SEED_TRAIN_IMAGES
    head: str = "gap"
    weights: str = "none"
    trainable: str = "all"  # all | head: what a training step updates (spec.TRAINABLE)
    epoch_data: str | None = None  # casting-layout folder: also measure one real epoch (train)
    augment: str = "none"  # augmentation preset for the measured epoch
    strategy: str = "default"  # default | mirrored | multiworker (tf.distribute)
    replicas: int | None = None  # mirrored: devices to use (None: every visible device)
    workers: int | None = None  # multiworker: processes in the cluster
    profile: str | None = None  # folder for profiler traces of a few steps after the timing
    step: str = "compiled"  # compiled | api | both (STEP_CHOICES): the step kinds timed
    runtime: str = "keras"  # keras | a serving runtime timing an exported artifact (RUNTIMES)
    threads: int | None = None  # serving runtime's CPU threads (None: one per usable core)
    artifacts: str | None = None  # folder of exported artifacts to reuse (and to export into)
    reuse_only: bool = False  # every artifact must be in ``artifacts`` already
    calibration_data: str | None = None  # casting-layout set: int8 calibrates on its train split
    calibration_images: int = 100  # how many of its training images calibrate
    test_data: str | None = None  # casting-layout set: runtime rows score its test split

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise UsageError(f"batch size must be a positive whole number, got {self.batch_size}")
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; choose from: {', '.join(MODES)}")
        if self.precision not in (*PRECISIONS, *SERVING_ONLY):
            choices = ", ".join((*PRECISIONS, *SERVING_ONLY))
            raise UsageError(f"unknown precision {self.precision!r}; choose from: {choices}")
        if self.steps <= 0:
            raise UsageError(f"steps must be positive, got {self.steps}")
        if self.warmup < 1:
            raise UsageError("warmup must be at least 1 (the first step compiles)")
        check_trainable(self.trainable)
        if self.step not in STEP_CHOICES:
            raise UsageError(f"unknown step {self.step!r}; choose from: {', '.join(STEP_CHOICES)}")
        if self.strategy not in STRATEGIES:
            raise UsageError(
                f"unknown strategy {self.strategy!r}; choose from: {', '.join(STRATEGIES)}"
            )
        for name in ("replicas", "workers"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"{name} must be a positive whole number, got {value}")
        if self.strategy == "default" and (self.replicas or 1) > 1:
            raise UsageError("--replicas needs --strategy mirrored")
        if self.strategy != "default" and self.epoch_data:
            raise UsageError("a measured epoch (--data) runs with the default strategy only")
        self._check_runtime()
        record = backbones.get(self.backbone)
        if self.input_size < record.min_size:
            raise UsageError(
                f"{record.name} needs an input of at least {record.min_size}x{record.min_size} px,"
                f" got {self.input_size}"
            )

    def _check_runtime(self) -> None:
        if self.runtime not in RUNTIMES:
            raise UsageError(
                f"unknown runtime {self.runtime!r}; choose from: {', '.join(RUNTIMES)}"
            )
        if self.threads is not None and self.threads <= 0:
            raise UsageError(f"threads must be a positive whole number, got {self.threads}")
        if self.reuse_only and not self.artifacts:
            raise UsageError("--reuse-only needs --artifacts DIR, the folder to reuse from")
        if self.runtime == "keras":
            if self.precision in SERVING_ONLY:
                raise UsageError(f"{self.precision} is a serving runtime's precision "
                                 f"({', '.join(serving_takers(self.precision))}); Keras times "
                                 f"{', '.join(PRECISIONS)}")  # fmt: skip
            return
        # an exported artifact holds the forward pass only, on one device
        if self.mode != "infer":
            raise UsageError(f"the {self.runtime} runtime times inference only; use --mode infer")
        if self.precision not in SERVING_PRECISIONS[self.runtime]:
            taken = ", ".join(SERVING_PRECISIONS[self.runtime])
            why = NOT_TAKEN.get((self.runtime, self.precision))
            raise UsageError(f"the {self.runtime} runtime runs {taken}, not {self.precision}"
                             + (f": {why}" if why else ""))  # fmt: skip
        if self.precision in CALIBRATED and not self.calibration_data:
            raise UsageError(f"{self.precision} needs calibration images: --data PATH, a "
                             "casting-layout data set (its training split calibrates)")  # fmt: skip
        if self.calibration_images <= 0:
            raise UsageError(f"calibration images must be positive, got {self.calibration_images}")
        if self.strategy != "default":
            raise UsageError(f"the {self.runtime} runtime runs with the default strategy only")

    @property
    def primary_step(self) -> str:
        """The step kind the row's statistics, probes and identity describe."""
        return "compiled" if self.step == "both" else self.step

    @property
    def step_kinds(self) -> tuple[str, ...]:
        """The step kinds to time, the primary one first (it owns the one compile)."""
        return STEP_KINDS if self.step == "both" else (self.step,)

    @property
    def steps_per_epoch(self) -> int:
        """Steps per epoch at the global batch, where the replica count is known up front."""
        return steps_per_epoch(self.n_train, self.batch_size * self.known_replicas)

    @property
    def known_replicas(self) -> int:
        """Replicas when known before TensorFlow starts (1 when not: the row has the truth)."""
        if self.strategy == "multiworker":
            return (self.workers or 1) * (self.replicas or 1)
        return (self.replicas or 1) if self.strategy == "mirrored" else 1

    @property
    def model_precision(self) -> str:
        """The Keras model's precision policy: a serving runtime's comes from a float32 model."""
        return self.precision if self.runtime == "keras" else "float32"

    @property
    def model_key(self) -> tuple:
        """Configurations with the same key can share one built model."""
        return (self.backbone, self.input_size, self.model_precision, self.jit_compile, self.head,
                self.weights, self.trainable, self.strategy, self.replicas,
                self.workers)  # fmt: skip

    @property
    def key(self) -> str:
        """Identifies the configuration in a results folder, for resume and compare."""
        jit = {None: "auto", True: "jit", False: "nojit"}[self.jit_compile]
        key = (
            f"{self.backbone}|{self.input_size}|{self.batch_size}|{self.mode}|"
            f"{self.precision}|{jit}|{self.head}"
        )
        if self.trainable != "all":  # appended only then: keys of full training stay as they were
            key += f"|train-{self.trainable}"
        if self.strategy != "default":
            key += f"|{self.strategy}"
            key += f":r{self.replicas}" if self.replicas else ""
            key += f":w{self.workers}" if self.workers else ""
        if self.primary_step != "compiled" and self.runtime == "keras":  # a runtime: one kind
            key += f"|step-{self.primary_step}"
        if self.runtime != "keras":  # appended only then: keys of Keras rows stay as they were
            key += f"|{self.runtime}"
            key += f":t{self.threads}" if self.threads else ""
        return key

    def as_dict(self) -> dict:
        return asdict(self)


def model_groups(configs: list[TimingConfig]) -> list[list[TimingConfig]]:
    """Runs of consecutive configurations that share one built model (the same ``model_key``)."""
    return [list(group) for _, group in itertools.groupby(configs, key=lambda c: c.model_key)]


def default_modes(runtimes: tuple[str, ...] | list[str]) -> list[str]:
    """Both modes for Keras alone; inference only where a serving runtime is in the matrix."""
    return ["infer"] if any(r != "keras" for r in runtimes) else list(MODES)


def build_matrix(
    names: list[str] | None,
    batch_sizes: list[int],
    modes: list[str],
    size: int | None = None,
    runtimes: tuple[str, ...] | list[str] = ("keras",),
    **common,
) -> list[TimingConfig]:
    """Backbone x mode x runtime x batch size, at each backbone's native size unless ``size``
    is given.

    Ordered so that one model serves consecutive configurations: backbone, then mode, then
    batch size ascending (a larger batch after a smaller one retraces cheaply), then runtime
    (each exports the same model; the serving runtimes of one batch size, side by side, are
    timed round robin).
    """
    if not batch_sizes:
        raise UsageError("give at least one batch size")
    configs = []
    for record in backbones.resolve(names):
        for mode in modes:
            for batch in sorted(dict.fromkeys(batch_sizes)):
                for runtime in dict.fromkeys(runtimes):
                    configs.append(
                        TimingConfig(
                            backbone=record.name,
                            input_size=size or record.native_size,
                            batch_size=batch,
                            mode=mode,
                            runtime=runtime,
                            **common,
                        )
                    )
    return configs
