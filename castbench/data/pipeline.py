"""The input pipeline, one for every Keras backend: cached uint8 images → augmentation →
backbone preprocessing, built on worker threads and prefetched.

Images are decoded once into a memory-mapped store (``castbench.data.cache``) at the requested
size. Each batch is gathered from it, augmented in numpy (:mod:`castbench.augment.apply`) and
passed through the backbone's ``preprocess_input`` (numpy in, numpy out) as a
``keras.utils.PyDataset``: ``fit`` and ``evaluate`` run it on Keras's own worker threads under
TensorFlow, JAX and PyTorch alike, and iterating it directly (``for images, labels in
dataset``) prefetches on a thread pool of the same size.

A batch is a pure function of (seed, its place in the stream of shuffled passes), so the same
arguments give the same batches whichever thread builds them. Each pass, whether ``fit`` runs
it or a loop iterates it, takes the next pass number: it reshuffles and draws fresh (but still
seeded) augmentations.
"""

from __future__ import annotations

import itertools
import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from castbench.augment import AugmentPreset, get_preset
from castbench.augment.apply import augment_batch
from castbench.data.cache import decoded_store
from castbench.data.loader import Sample
from castbench.errors import UsageError

Batch = tuple[np.ndarray, np.ndarray]


def default_workers() -> int:
    """Threads that build batches: the host's cores, at most 8 (numpy releases the GIL in
    its array loops, so threads share the work; more only queue)."""
    return max(1, min(8, os.cpu_count() or 1))


class CastingBatches(keras.utils.PyDataset):
    """Batches of (images float32 [B, size, size, 3] after ``preprocess``, labels float32
    [B, 1]) from a decoded store; the last batch of a pass may be partial."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        preprocess: Callable | None,
        preset: AugmentPreset,
        shuffle: bool,
        seed: int,
        repeat: bool,
        workers: int,
        prefetch: int,
    ):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=prefetch)
        self.images, self.labels = images, labels
        self.batch_size, self.preprocess, self.preset = batch_size, preprocess, preset
        self.shuffle, self.seed, self.repeat = shuffle, seed, repeat
        self.passes = 0  # passes started so far; the next pass's number

    def __len__(self) -> int:
        """Batches in one pass (``fit``'s steps per epoch)."""
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int) -> Batch:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = self.passes * len(self.labels) + index * self.batch_size
        end_of_pass = (self.passes + 1) * len(self.labels)
        return self.batch_at(start, min(start + self.batch_size, end_of_pass))

    def on_epoch_end(self) -> None:
        """``fit`` and ``evaluate`` finished a pass: the next one reshuffles and redraws."""
        self.passes += 1

    def __iter__(self) -> Iterator[Batch]:
        """One pass (without end under ``repeat``, where batches run on across passes and are
        all full), built ``workers`` batches at a time, ``max_queue_size`` ahead."""
        first = self.passes * len(self.labels)
        self.passes += 1
        if self.repeat:
            starts: Iterator[int] = itertools.count(first, self.batch_size)
            spans = ((s, s + self.batch_size) for s in starts)
        else:
            end = first + len(self.labels)
            spans = ((s, min(s + self.batch_size, end)) for s in range(first, end, self.batch_size))
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="castbench-batches")
        pending: deque[Future] = deque()
        try:
            for span in spans:
                pending.append(pool.submit(self.batch_at, *span))
                if len(pending) > self.max_queue_size:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def batch_at(self, start: int, stop: int) -> Batch:
        """The batch at positions [start, stop) of the stream of passes laid end to end."""
        rows = self._rows(start, stop)
        pixels = np.asarray(self.images[rows], np.float32)
        if not self.preset.identity:
            pixels = augment_batch(pixels, self.preset, seed=(self.seed, start))
        if self.preprocess is not None:
            pixels = np.asarray(self.preprocess(pixels), np.float32)
        return pixels, self.labels[rows]

    def _rows(self, start: int, stop: int) -> np.ndarray:
        n = len(self.labels)
        parts = []
        while start < stop:
            number, offset = divmod(start, n)
            take = min(stop - start, n - offset)
            parts.append(self._order(number)[offset : offset + take])
            start += take
        return np.concatenate(parts)

    def _order(self, number: int) -> np.ndarray:
        """The store rows in pass ``number``'s order."""
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, number]).permutation(n)


def make_dataset(
    samples: list[Sample],
    size: int,
    batch_size: int,
    preprocess: Callable | None = None,
    augment: str = "none",
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> CastingBatches:
    """The pipeline over ``samples`` at ``size``×``size``. ``preprocess`` (a backbone's keras
    ``preprocess_input``) gets 0..255 float32 RGB in numpy. ``repeat`` makes iteration endless
    (``fit`` still sees one pass per epoch)."""
    preset = get_preset(augment)
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    store = decoded_store(samples, size, cache_dir)
    workers = workers or default_workers()
    return CastingBatches(
        store.images,
        store.labels.astype(np.float32)[:, None],
        batch_size,
        preprocess,
        preset,
        shuffle,
        seed,
        repeat,
        workers,
        prefetch=2 * workers,
    )
