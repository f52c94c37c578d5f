"""The tf.data input pipeline: cached uint8 images → augmentation → backbone preprocessing.

Images are decoded once into a memory-mapped store (``castbench.data.cache``) at the requested
size, then each batch is gathered from it, augmented on the whole batch at once
(:mod:`castbench.augment.apply`), passed through the backbone's ``preprocess_input`` and
prefetched. Random draws are stateless and seeded, so the same arguments give the same
batches; each pass over a non-repeating dataset draws fresh (but still seeded) augmentations,
as Keras' ``fit`` iterates it once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from castbench.augment import get_preset
from castbench.augment.apply import augment_tensor
from castbench.data.cache import decoded_store
from castbench.data.loader import Sample
from castbench.errors import UsageError


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
) -> tf.data.Dataset:
    """Batches of (images float32 [B, size, size, 3] after ``preprocess``, labels float32
    [B, 1]). ``preprocess`` (a backbone's keras ``preprocess_input``) gets 0..255 float RGB.
    The last batch may be partial."""
    preset = get_preset(augment)
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    store = decoded_store(samples, size, cache_dir)
    images, labels = store.images, store.labels.astype(np.float32)[:, None]
    n = len(labels)

    def gather(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.asarray(index, np.int64)
        return np.ascontiguousarray(images[order]), labels[order]

    def load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch, batch_labels = tf.numpy_function(gather, [index], [tf.uint8, tf.float32])
        batch.set_shape([None, size, size, 3])
        batch_labels.set_shape([None, 1])
        return batch, batch_labels

    def transform(batch: tf.Tensor, batch_labels: tf.Tensor, draw_seed: tf.Tensor):
        pixels = tf.cast(batch, tf.float32)
        if not preset.identity:
            pixels = augment_tensor(pixels, preset, tf.stack([draw_seed, preset.seed]))
        if preprocess is not None:
            pixels = tf.cast(preprocess(pixels), tf.float32)
        return pixels, batch_labels

    dataset = tf.data.Dataset.range(n)
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    dataset = tf.data.Dataset.zip((dataset, draws)).map(
        lambda pair, draw_seed: transform(pair[0], pair[1], draw_seed),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
