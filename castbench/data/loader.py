"""Read the Kaggle casting-defect layout, unchanged.

Layout: ``ROOT/{train,test}/{def_front,ok_front}/*.jpeg`` (``ROOT`` may also be the outer
folder of the download that holds ``casting_data/``). The positive class is the defect
(``def_front``, label 1). Junk that real downloads carry (``.DS_Store``, ``Thumbs.db``,
AppleDouble ``._*`` files) and unreadable or truncated images are skipped, counted and named in
a warning. No TensorFlow here: the CLI checks its input before the framework starts.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from castbench.errors import UsageError

SPLITS = ("train", "test")
CLASSES = {"def_front": 1, "ok_front": 0}  # folder -> label; 1 = defect (the positive class)
MAX_WARNINGS = 10  # skipped files named one per line, then a summary line
_JPEG_EOI = b"\xff\xd9"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 1 = defect


@dataclass
class CastingData:
    root: Path
    train: list[Sample]
    test: list[Sample]
    skipped: list[tuple[Path, str]]  # (file, reason)
    # What the scan saw, for ``castbench data check``: (width, height) and PIL mode counts.
    sizes: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)
    modes: dict[str, int] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for split, samples in (("train", self.train), ("test", self.test)):
            n_def = sum(s.label for s in samples)
            out[split] = {"def_front": n_def, "ok_front": len(samples) - n_def}
        return out


def resolve_root(root: str | Path) -> Path:
    """The folder holding ``train/`` and ``test/``: ROOT itself or ROOT/casting_data."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"data folder {root} does not exist")
    for candidate in (root, root / "casting_data"):
        if all((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise UsageError(
        f"{root} is not a casting data set: expected {root}/train and {root}/test "
        "(or casting_data/train and casting_data/test), each with def_front/ and ok_front/"
    )


def probe_image(path: Path) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """Cheap check of one file: (reason to skip or None, (width, height), mode).

    Reads the header, and for JPEGs the end-of-image marker, which truncated downloads lack;
    a full decode of every file would cost seconds on the real set.
    """
    try:
        with Image.open(path) as image:
            image_format, size, mode = image.format, image.size, image.mode
    except Exception:  # PIL raises many types for junk
        return "not an image", None, None
    if size[0] < 1 or size[1] < 1:
        return "empty image", size, mode
    if image_format == "JPEG":
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 1024))
            tail = handle.read()
        if _JPEG_EOI not in tail:
            return "truncated JPEG (no end-of-image marker)", size, mode
    return None, size, mode


def decode_rgb(path: str | Path, size: int | None = None, resample: str = "nearest") -> np.ndarray:
    """Decode one image to uint8 RGB [H, W, 3], optionally resized to ``size``×``size``.

    Grey (L), RGBA, palette (P) and CMYK images are converted to RGB. ``nearest`` matches
    ImageDataGenerator.flow_from_directory's default interpolation. Raises OSError when the
    file is unreadable or truncated.
    """
    with Image.open(path) as image:
        image.load()  # raises on truncated data
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, image)
        rgb = image.convert("RGB")
        if size is not None and rgb.size != (size, size):
            rgb = rgb.resize((size, size), _RESAMPLE[resample])
        return np.asarray(rgb, dtype=np.uint8)


_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def warn_skipped(skipped: list[tuple[Path, str]], limit: int = MAX_WARNINGS) -> None:
    """One warning line per skipped file, the first ``limit`` of them, then a count."""
    for path, reason in skipped[:limit]:
        warnings.warn(f"castbench: skipped {path}: {reason}", stacklevel=3)
    if len(skipped) > limit:
        warnings.warn(
            f"castbench: skipped {len(skipped) - limit} more files (see `castbench data check`)",
            stacklevel=3,
        )


def load_casting(root: str | Path) -> CastingData:
    """Scan the casting layout under ``root``; skip and name junk, raise UsageError if a class
    folder is missing or holds no images."""
    base = resolve_root(root)
    splits: dict[str, list[Sample]] = {}
    skipped: list[tuple[Path, str]] = []
    sizes: dict[tuple[int, int], int] = {}
    modes: dict[str, int] = {}
    for split in SPLITS:
        samples = []
        for folder, label in CLASSES.items():
            directory = base / split / folder
            if not directory.is_dir():
                raise UsageError(f"missing class folder {directory}")
            found = 0
            for path in sorted(p for p in directory.iterdir() if p.is_file()):
                reason, size, mode = probe_image(path)
                if reason is not None:
                    skipped.append((path, reason))
                    continue
                sizes[size] = sizes.get(size, 0) + 1
                modes[mode] = modes.get(mode, 0) + 1
                samples.append(Sample(path, label))
                found += 1
            if found == 0:
                raise UsageError(f"class folder {directory} holds no readable images")
        splits[split] = samples
    if skipped:
        warn_skipped(skipped)
    return CastingData(base, splits["train"], splits["test"], skipped, sizes, modes)


def split_validation(
    samples: list[Sample], fraction: float = 0.2, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """Deterministic stratified split: (train, validation), each in path order.

    ``round(fraction * n)`` samples of each class go to validation, chosen by a seeded
    permutation (the seed study used ImageDataGenerator's validation_split=0.2).
    """
    if not 0.0 <= fraction < 1.0:
        raise UsageError(f"validation fraction must be in [0, 1), got {fraction}")
    ordered = sorted(samples, key=lambda s: (str(s.path), s.label))
    rng = np.random.default_rng(seed)
    validation_ids: set[int] = set()
    for label in sorted({s.label for s in ordered}):
        members = [i for i, s in enumerate(ordered) if s.label == label]
        n_val = int(round(fraction * len(members)))
        picked = rng.permutation(len(members))[:n_val]
        validation_ids.update(members[i] for i in picked)
    train = [s for i, s in enumerate(ordered) if i not in validation_ids]
    validation = [s for i, s in enumerate(ordered) if i in validation_ids]
    return train, validation
