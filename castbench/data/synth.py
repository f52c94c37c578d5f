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
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from castbench.data.cache import cache_root
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

# How visible defects are (1 = as drawn below). Tuned so that a small CNN trained for three
# epochs at 128 px scores well below 100 % (about 75-80 %: scripts/small_cnn_check.py).
DEFECT_STRENGTH = 3.0

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
) -> Path:
    """Write a synthetic casting set under ``out`` in the Kaggle layout; return ``out``."""
    counts = counts_for(scale, n_train, n_test)
    out = Path(out).expanduser()
    for split in ("train", "test"):
        existing = out / split
        if existing.is_dir() and any(existing.rglob("*.jpeg")):
            raise UsageError(f"{existing} already holds images; choose an empty folder")
    canvas = _Canvas(IMAGE_SIZE)
    for split_index, split in enumerate(("train", "test")):
        c = counts[split]
        for folder, label, n in (("def_front", 1, c.defect), ("ok_front", 0, c.ok)):
            directory = out / split / folder
            directory.mkdir(parents=True, exist_ok=True)
            names = _file_names(seed, split_index, label, n, c.new_defects if label else 0)
            for index, name in enumerate(names):
                rng = np.random.default_rng([seed, split_index, label, index, _GENERATOR_VERSION])
                grey = canvas.render(rng, defective=bool(label))
                (directory / name).write_bytes(encode_jpeg(grey))
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


class _Canvas:
    """Draws one casting image; holds the pixel grid so it is built once per run."""

    def __init__(self, size: int):
        self.size = size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.xx, self.yy = xx, yy

    def _noise(self, rng: np.random.Generator, cells: int, sigma: float) -> np.ndarray:
        """Smooth noise: a coarse random grid upsampled bicubically."""
        coarse = rng.standard_normal((cells, cells), dtype=np.float32)
        image = Image.fromarray(coarse, "F").resize((self.size, self.size), Image.BICUBIC)
        return np.asarray(image) * sigma

    def render(self, rng: np.random.Generator, defective: bool) -> np.ndarray:
        s = self.size
        # Pose: centre jitter, outer radius, rotation; lighting: gain, direction, strength.
        cx = s / 2 + rng.normal(0, 7)
        cy = s / 2 + rng.normal(0, 7)
        radius = rng.uniform(112, 134)
        rotation = rng.uniform(0, 2 * np.pi)
        gain = rng.uniform(0.78, 1.18)
        light_angle = rng.uniform(0, 2 * np.pi)
        light = rng.uniform(0.0, 0.18)
        n_vanes = int(rng.integers(6, 10))
        curve = rng.uniform(1.5, 3.0)

        dx, dy = self.xx - cx, self.yy - cy
        r = np.hypot(dx, dy) / radius
        theta_abs = np.arctan2(dy, dx)
        theta = theta_abs + rotation

        # Background: light, with a smooth stain texture and grain.
        bg_level = rng.uniform(0.66, 0.80)
        background = (
            bg_level
            + self._noise(rng, 6, 0.035)
            + 0.018 * rng.standard_normal((s, s), dtype=np.float32)
        )

        # Radial profile of the casting, with soft edges.
        def step(edge: float, width: float = 0.012) -> np.ndarray:
            return np.clip((r - edge) / width + 0.5, 0.0, 1.0)

        bore, hub_v, eye, vane_v = rng.uniform(0.08, 0.16), rng.uniform(0.50, 0.62), 0.22, 0.40
        ring_v, shroud_v, rim_v = rng.uniform(0.46, 0.56), rng.uniform(0.70, 0.80), 0.52
        eye_out = rng.uniform(0.48, 0.54)
        vanes = np.sin(n_vanes * (theta + curve * r)) > 0.55
        eye_layer = np.where(vanes, vane_v, eye) + 0.05 * (r - 0.25)
        value = np.full((s, s), bore, np.float32)
        value = value + (hub_v - value) * step(0.11)
        value = value + (eye_layer - value) * step(0.24)
        value = value + (ring_v - value) * step(eye_out)
        value = value + (0.82 - value) * step(eye_out + 0.095, 0.008)  # bright step edge
        value = value + (shroud_v - value) * step(eye_out + 0.11)
        value = value + (rim_v - value) * step(0.93)
        # Machining rings on the shroud and grain over the whole casting.
        value += 0.015 * np.sin(r * radius * rng.uniform(0.7, 1.3))
        casting_grain = self._noise(rng, 40, 0.03) + 0.02 * rng.standard_normal(
            (s, s), dtype=np.float32
        )
        value += casting_grain
        # Directional light across the casting.
        value *= 1.0 + light * np.minimum(r, 1.0) * np.cos(theta_abs - light_angle)

        inside = 1.0 - step(1.0, 0.01)
        mask_extra = np.zeros((s, s), np.float32)  # added casting material (burrs)
        mask_missing = np.zeros((s, s), np.float32)  # removed material (chips)
        dark = np.zeros((s, s), np.float32)  # darkening by holes, cracks, shrinkage

        if defective:
            k = DEFECT_STRENGTH
            n_defects = 1 + int(rng.random() < 0.35) + int(rng.random() < 0.12)
            kinds = rng.choice(5, size=n_defects, replace=True, p=[0.2, 0.2, 0.22, 0.18, 0.2])
            for kind in kinds:
                angle = rng.uniform(-np.pi, np.pi)
                d_theta = np.angle(np.exp(1j * (theta_abs - angle)))
                if kind == 0:  # burr past the rim
                    width = rng.uniform(0.03, 0.10)
                    height = k * rng.uniform(0.02, 0.07)
                    rough = 1.0 + 0.35 * self._noise(rng, 24, 1.0)
                    shape = np.clip(1 - np.abs(d_theta) / width, 0, 1) ** 0.6 * rough
                    mask_extra = np.maximum(mask_extra, (r < 1.0 + height * shape) & (r > 0.9))
                elif kind == 1:  # chipped rim
                    width = rng.uniform(0.03, 0.09)
                    depth = k * rng.uniform(0.025, 0.07)
                    shape = np.clip(1 - (d_theta / width) ** 2, 0, 1)
                    mask_missing = np.maximum(mask_missing, r > 1.0 - depth * shape)
                elif kind == 2:  # pinholes
                    for _ in range(int(rng.integers(1, 5))):
                        rr = rng.uniform(0.3, 0.9)
                        a = rng.uniform(-np.pi, np.pi)
                        px, py = cx + rr * radius * np.cos(a), cy + rr * radius * np.sin(a)
                        hole = rng.uniform(1.3, 3.2)
                        dist = np.hypot(self.xx - px, self.yy - py)
                        dark += k * rng.uniform(0.25, 0.45) * np.clip(hole + 0.5 - dist, 0, 1)
                elif kind == 3:  # shrinkage patch: rough, dark, irregular
                    rr = rng.uniform(0.62, 0.9)
                    a = rng.uniform(-np.pi, np.pi)
                    px, py = cx + rr * radius * np.cos(a), cy + rr * radius * np.sin(a)
                    size = rng.uniform(5, 13)
                    dist = np.hypot((self.xx - px) / rng.uniform(0.6, 1.4), self.yy - py) / size
                    blob = (1 - dist) + 0.5 * self._noise(rng, 30, 1.0)
                    patch = np.clip(blob * 3, 0, 1)
                    dark += (
                        k
                        * rng.uniform(0.10, 0.22)
                        * patch
                        * (1 + 0.5 * rng.random((s, s), dtype=np.float32))
                    )
                else:  # thin crack: a jagged line, often from the rim inwards
                    layer = Image.new("L", (s, s), 0)
                    draw = ImageDraw.Draw(layer)
                    rr = rng.uniform(0.55, 1.0)
                    a = rng.uniform(-np.pi, np.pi)
                    x, y = cx + rr * radius * np.cos(a), cy + rr * radius * np.sin(a)
                    heading = a + np.pi + rng.normal(0, 0.6)
                    points = [(x, y)]
                    for _ in range(int(rng.integers(4, 10))):
                        heading += rng.normal(0, 0.5)
                        length = rng.uniform(3, 8)
                        x, y = x + length * np.cos(heading), y + length * np.sin(heading)
                        points.append((x, y))
                    draw.line(points, fill=255, width=int(rng.integers(1, 3)))
                    line = np.asarray(layer.filter(ImageFilter.GaussianBlur(0.5)), np.float32)
                    dark += k * rng.uniform(0.22, 0.4) * line / 255.0

        # Benign marks in both classes: dust specks on the background.
        for _ in range(int(rng.integers(0, 4))):
            px, py = rng.uniform(0, s, 2)
            dist = np.hypot(self.xx - px, self.yy - py)
            background -= rng.uniform(0.05, 0.2) * np.clip(rng.uniform(0.8, 2.0) - dist, 0, 1)

        material = np.clip(inside + mask_extra - mask_missing, 0.0, 1.0)
        # Past the rim the profile stays rim-coloured, so burrs look like cast material.
        image = background * (1 - material) + (value - dark) * material
        image *= gain
        grey = Image.fromarray(np.clip(image * 255.0, 0, 255).astype(np.uint8), "L")
        return np.asarray(grey.filter(ImageFilter.GaussianBlur(0.6)))
