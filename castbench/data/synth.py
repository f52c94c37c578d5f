"""An offline stand-in for the Kaggle casting-defect set, in the same layout and format.

Each image is a 300×300 grey top view of a cast pump impeller (bore, hub, dark vaned eye,
stepped ring, bright shroud, rim) on a light textured background, in a random pose and
lighting. Defective castings carry one or several of: burrs past the rim, a chipped rim,
pinholes, shrinkage patches, thin cracks. Both classes share the same pose, lighting and
background-dust distributions, so mean brightness does not tell them apart.

Same seed → identical bytes: every image draws from its own numpy Generator seeded by
(seed, split, class, index), and JPEGs are written with a fixed quality and subsampling.
No TensorFlow here.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from castbench.data.cache import cache_root
from castbench.data.drawing import Canvas
from castbench.errors import UsageError

IMAGE_SIZE = 300
JPEG_QUALITY = 90
JPEG_SUBSAMPLING = 2  # 4:2:0
SCALES = ("small", "full")

# The seed study's split (Kaggle set): train 3,758 def + 2,875 ok; test 453 def (37 of them
# named new__0_<n>.jpeg) + 262 ok.
FULL_COUNTS = {"train": (3758, 2875), "test": (453, 262)}
FULL_NEW_DEFECTS = 37
SMALL_FACTOR = 10


_GENERATOR_VERSION = 2


@dataclass(frozen=True)
class SplitCounts:
    defect: int
    ok: int
    new_defects: int = 0  # how many of ``defect`` are named new__0_<n>.jpeg (test only)


def counts_for(
    scale: str = "small", n_train: int | None = None, n_test: int | None = None
) -> dict[str, SplitCounts]:
    """Images per split and class: the seed's ratios, at 1/10 (small) or full scale."""
    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; choose from: {', '.join(SCALES)}")
    divisor = SMALL_FACTOR if scale == "small" else 1
    out = {}
    for split, wanted in (("train", n_train), ("test", n_test)):
        full_def, full_ok = FULL_COUNTS[split]
        if wanted is None:
            n_def, n_ok = _round(full_def / divisor), _round(full_ok / divisor)
        else:
            if wanted < 2:
                raise UsageError(f"--{split} needs at least 2 images (one per class), got {wanted}")
            n_def = min(max(1, _round(wanted * full_def / (full_def + full_ok))), wanted - 1)
            n_ok = wanted - n_def
        new = _round(n_def * FULL_NEW_DEFECTS / full_def) if split == "test" else 0
        out[split] = SplitCounts(n_def, n_ok, min(new, n_def))
    return out


def _round(x: float) -> int:
    return int(np.floor(x + 0.5))


def generate(
    out: str | Path,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    scale: str = "small",
    workers: int | None = None,
) -> Path:
    """Write a synthetic casting set under ``out`` in the Kaggle layout; return ``out``.
    ``workers`` processes render it (default: one per core, for sets of ``PARALLEL_FROM``
    images or more); the bytes are the same whatever their number."""
    counts = counts_for(scale, n_train, n_test)
    out = Path(out).expanduser()
    for split in ("train", "test"):
        existing = out / split
        if existing.is_dir() and any(existing.rglob("*.jpeg")):
            raise UsageError(f"{existing} already holds images; choose an empty folder")
    chunks = []
    for split_index, split in enumerate(("train", "test")):
        c = counts[split]
        for folder, label, n in (("def_front", 1, c.defect), ("ok_front", 0, c.ok)):
            directory = out / split / folder
            directory.mkdir(parents=True, exist_ok=True)
            names = list(enumerate(_file_names(seed, split_index, label, n,
                                               c.new_defects if label else 0)))  # fmt: skip
            for start in range(0, len(names), CHUNK):
                part = names[start : start + CHUNK]
                chunks.append(_Chunk(directory, seed, split_index, label, part))
    total = sum(len(chunk.names) for chunk in chunks)
    workers = workers or ((os.cpu_count() or 1) if total >= PARALLEL_FROM else 1)
    if workers > 1:
        # spawned, not forked: the caller may hold a framework's threads
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
            list(pool.map(_render, chunks))
    else:
        for chunk in chunks:
            _render(chunk)
    manifest = {
        "generator": "castbench.data.synth",
        "version": _GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "counts": {k: vars(v) for k, v in counts.items()},
        "image_size": IMAGE_SIZE,
        "jpeg_quality": JPEG_QUALITY,
    }
    (out / "castbench-synthetic.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


# Images per unit of work, and the set size from which the default renders in parallel (a
# spawned worker costs about a second to start).
CHUNK = 100
PARALLEL_FROM = 1000


@dataclass(frozen=True)
class _Chunk:
    directory: Path
    seed: int
    split_index: int
    label: int
    names: list[tuple[int, str]]  # (index within the class, file name)


def _render(chunk: _Chunk) -> None:
    """Write ``chunk``'s images: each from its own generator, so any worker writes the same
    bytes."""
    canvas = Canvas(IMAGE_SIZE)
    for index, name in chunk.names:
        key = [chunk.seed, chunk.split_index, chunk.label, index, _GENERATOR_VERSION]
        grey = canvas.render(np.random.default_rng(key), defective=bool(chunk.label))
        (chunk.directory / name).write_bytes(encode_jpeg(grey))


def encode_jpeg(grey: np.ndarray) -> bytes:
    """A grey uint8 image as an RGB JPEG (like the real set), with fixed settings."""
    buffer = io.BytesIO()
    Image.fromarray(grey, "L").convert("RGB").save(
        buffer, "JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING, optimize=False
    )
    return buffer.getvalue()


def _file_names(seed: int, split_index: int, label: int, n: int, n_new: int) -> list[str]:
    """Real-looking names: cast_def_0_<n>.jpeg / cast_ok_0_<n>.jpeg with scattered numbers,
    plus ``n_new`` defects named new__0_<n>.jpeg. Train and test numbers never collide."""
    rng = np.random.default_rng([seed, 7919, label])
    pool = rng.permutation(max(16, 3 * n + 64) * 4)  # one pool per class, shared by the splits
    chunk = pool[split_index::2][:n]
    numbers = sorted(int(v) for v in chunk)
    prefix = "cast_def_0_" if label else "cast_ok_0_"
    names = [f"{prefix}{v}.jpeg" for v in numbers[: n - n_new]]
    names += [f"new__0_{v}.jpeg" for v in numbers[n - n_new :]]
    return names


def default_synthetic_set() -> Path:
    """The small synthetic set (seed 0), generated once into the cache and reused."""
    target = cache_root() / f"synthetic-small-s0-v{_GENERATOR_VERSION}"
    if (target / "castbench-synthetic.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=target.parent))
    try:
        generate(scratch, seed=0, scale="small")
        try:
            os.replace(scratch, target)
        except OSError:  # another process finished first
            if not (target / "castbench-synthetic.json").is_file():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target
