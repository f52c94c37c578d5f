"""Decode once: a uint8 array store of images at one target size, memory-mapped on reuse.

The store is a numpy ``.npy`` file of shape [N, size, size, 3] plus a JSON sidecar (labels,
files that failed to decode). Its name is keyed by the file list, the target size, the resize
filter and every file's stamp (path, byte size, mtime), so a changed, added or removed file
builds a new store, and the stale one for the same file list and size is removed. Stores live
under ``$CASTBENCH_CACHE/decoded`` (default ``~/.cache/castbench/decoded``). No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from castbench.data import loader
from castbench.errors import UsageError

_STORE_VERSION = 1


def cache_root() -> Path:
    """Where castbench keeps generated and decoded data: $CASTBENCH_CACHE or
    ~/.cache/castbench."""
    env = os.environ.get("CASTBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "castbench"


@dataclass
class DecodedStore:
    images: np.ndarray  # uint8 [N, size, size, 3], memory-mapped read-only
    labels: np.ndarray  # int64 [N]; 1 = defect
    files: list[str]  # the decoded files, in store order
    failed: list[tuple[str, str]]  # (file, reason): listed but not decodable, left out
    path: Path  # the .npy file
    built: bool  # True when this call decoded the images, False when it reused the store


def store_key(
    samples: list[loader.Sample], size: int, resample: str = "nearest"
) -> tuple[str, str]:
    """(family, stamp): ``family`` names the file list and size; ``stamp`` adds file stamps."""
    files = [str(Path(s.path).resolve()) for s in samples]
    family = hashlib.sha256(
        json.dumps([_STORE_VERSION, size, resample, files, [s.label for s in samples]]).encode()
    ).hexdigest()[:16]
    stamps = []
    for name in files:
        try:
            st = os.stat(name)
            stamps.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((-1, -1))
    stamp = hashlib.sha256(json.dumps(stamps).encode()).hexdigest()[:16]
    return family, stamp


def decoded_store(
    samples: list[loader.Sample],
    size: int,
    cache_dir: str | Path | None = None,
    resample: str = "nearest",
) -> DecodedStore:
    """The decoded images of ``samples`` at ``size``×``size``, from the cache or decoded now.

    ``nearest`` resizing matches ImageDataGenerator.flow_from_directory's default.
    """
    if not samples:
        raise UsageError("no images to load")
    if size < 1:
        raise UsageError(f"image size must be positive, got {size}")
    directory = Path(cache_dir) if cache_dir is not None else cache_root() / "decoded"
    directory.mkdir(parents=True, exist_ok=True)
    family, stamp = store_key(samples, size, resample)
    npy = directory / f"{family}-{size}-{stamp}.npy"
    meta_file = npy.with_suffix(".json")
    if npy.is_file() and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        images = np.load(npy, mmap_mode="r")
        return DecodedStore(
            images,
            np.asarray(meta["labels"], np.int64),
            meta["files"],
            [tuple(f) for f in meta["failed"]],
            npy,
            built=False,
        )
    return _build(samples, size, resample, directory, npy, f"{family}-{size}-")


def _decode(args: tuple[str, int, str]) -> np.ndarray | str:
    path, size, resample = args
    try:
        return loader.decode_rgb(path, size, resample)
    except Exception as exc:  # unreadable or truncated: reported, left out
        return f"cannot decode ({type(exc).__name__}: {str(exc)[:80]})"


def _decode_into(
    array: np.ndarray, jobs: list[tuple[str, int, str]]
) -> tuple[list[int], list[tuple[str, str]]]:
    """Decode ``jobs`` into the leading rows of ``array``: (indices kept, (file, reason) failed)."""
    kept: list[int] = []
    failed: list[tuple[str, str]] = []
    threads = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(threads) as pool:  # PIL decodes outside the GIL
        for index, result in enumerate(pool.map(_decode, jobs, chunksize=16)):
            if isinstance(result, str):
                failed.append((jobs[index][0], result))
                continue
            array[len(kept)] = result
            kept.append(index)
    return kept, failed


def _build(
    samples: list[loader.Sample],
    size: int,
    resample: str,
    directory: Path,
    npy: Path,
    family_prefix: str,
) -> DecodedStore:
    jobs = [(str(s.path), size, resample) for s in samples]
    fd, scratch_name = tempfile.mkstemp(prefix=".decoding-", suffix=".npy", dir=directory)
    os.close(fd)
    scratch = Path(scratch_name)
    try:
        array = np.lib.format.open_memmap(
            scratch, mode="w+", dtype=np.uint8, shape=(len(samples), size, size, 3)
        )
        kept, failed = _decode_into(array, jobs)
        array.flush()
        del array
        if not kept:
            raise UsageError("none of the images could be decoded")
        if failed:
            loader.warn_skipped([(Path(f), why) for f, why in failed])
            # Rewrite without the unused tail rows so the shape is exact.
            full = np.load(scratch, mmap_mode="r")
            np.save(npy.with_suffix(".tmp.npy"), full[: len(kept)])
            del full
            os.replace(npy.with_suffix(".tmp.npy"), scratch)
        meta = {
            "version": _STORE_VERSION,
            "size": size,
            "resample": resample,
            "labels": [samples[i].label for i in kept],
            "files": [jobs[i][0] for i in kept],
            "failed": failed,
        }
        meta_file = npy.with_suffix(".json")
        meta_scratch = meta_file.with_suffix(".json.tmp")
        meta_scratch.write_text(json.dumps(meta))
        os.replace(meta_scratch, meta_file)
        os.replace(scratch, npy)
    finally:
        if scratch.exists():
            scratch.unlink()
    _remove_stale(directory, family_prefix, keep=npy)
    return DecodedStore(
        np.load(npy, mmap_mode="r"),
        np.asarray(meta["labels"], np.int64),
        meta["files"],
        failed,
        npy,
        built=True,
    )


def _remove_stale(directory: Path, family_prefix: str, keep: Path) -> None:
    """Drop older stores of the same file list and size (their files changed since)."""
    for old in directory.glob(f"{family_prefix}*"):
        if old.stem != keep.stem and old.suffix in (".npy", ".json"):
            try:
                old.unlink()
            except OSError as exc:
                warnings.warn(f"castbench: could not remove stale cache {old}: {exc}", stacklevel=2)
