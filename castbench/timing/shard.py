"""Split a timing matrix into shards that separate machines (or jobs) can run.

Whole model groups go to one shard, so a backbone's configurations still share one model and
its compiled steps. Groups are balanced by a rough cost estimate (longest first, each to the
least loaded shard), and the split depends only on the matrix, so every shard computes the same
assignment.
"""

from __future__ import annotations

import re

from castbench.errors import UsageError
from castbench.timing.config import TimingConfig, model_groups

# Forward GFLOPs (multiply-adds x 2) per image at the native size, from the Keras applications
# table; only the ratios matter. Unknown backbones count as a mid-sized one.
NATIVE_GFLOPS = {
    "Xception": 16.8, "VGG16": 31.0, "ResNet50": 8.2, "ResNet101V2": 14.4, "InceptionV3": 11.5,
    "InceptionResNetV2": 26.4, "MobileNetV2": 0.6, "DenseNet169": 6.8, "NASNetMobile": 1.1,
    "EfficientNetB4": 8.8,
}  # fmt: skip
DEFAULT_GFLOPS = 10.0
# A first step (trace and compile) costs about this many GFLOPs' worth of time on a CPU
# (DESIGN: first steps of 1-49 s at ~300 GFLOP/s).
COMPILE_GFLOPS = 3_000.0
NATIVE_SIZE = {"Xception": 299, "InceptionV3": 299, "InceptionResNetV2": 299,
               "EfficientNetB4": 380}  # fmt: skip


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based) as (i, n); a UsageError for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise UsageError(f"--shard must look like i/n (e.g. 2/3), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: need 1 <= i <= n, got i={index}, n={count}")
    return index, count


def config_cost(config: TimingConfig) -> float:
    """A rough relative cost of measuring ``config`` (GFLOP-equivalents)."""
    native = NATIVE_SIZE.get(config.backbone, 224)
    per_image = (
        NATIVE_GFLOPS.get(config.backbone, DEFAULT_GFLOPS) * (config.input_size / native) ** 2
    )
    per_step = per_image * config.batch_size * (3.0 if config.mode == "train" else 1.0)
    return COMPILE_GFLOPS + per_step * (config.steps + config.warmup)


def assign(configs: list[TimingConfig], count: int) -> list[list[TimingConfig]]:
    """The ``count`` shards of ``configs``, each in matrix order."""
    if count < 1:
        raise UsageError(f"shard count must be at least 1, got {count}")
    groups = model_groups(configs)
    costed = sorted(
        enumerate(groups),
        key=lambda item: (-sum(config_cost(c) for c in item[1]), item[0]),
    )
    loads = [0.0] * count
    owner: dict[int, int] = {}
    for position, group in costed:
        shard = min(range(count), key=lambda s: (loads[s], s))
        owner[position] = shard
        loads[shard] += sum(config_cost(c) for c in group)
    shards: list[list[TimingConfig]] = [[] for _ in range(count)]
    for position, group in enumerate(groups):
        shards[owner[position]].extend(group)
    return shards


def select(configs: list[TimingConfig], shard: str | None) -> list[TimingConfig]:
    """The configurations shard ``"i/n"`` runs (all of them without a shard)."""
    if shard is None:
        return list(configs)
    index, count = parse_shard(shard)
    return assign(list(configs), count)[index - 1]
