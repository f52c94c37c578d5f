"""Precise batch normalisation: replace every batch-norm layer's moving statistics by true
averages over K training batches, with the weights fixed (the ``PreciseBN`` of pycls and
Detectron2).

Why: a batch-norm layer trains with the statistics of each batch but predicts with exponential
moving averages of them (momentum 0.99-0.999 in the Keras applications, so an average over the
last 100-1,000 steps). From random weights the weights move faster than those averages follow,
and in inference mode the network then scores every image alike although the same weights in
training mode separate them. Recomputing the averages for the current weights removes that lag.

How: each layer's input is what the layers before it produce in training mode (they normalise
with batch statistics, so no layer's new statistics feed another's), recorded by wrapping each
layer's ``call`` for one forward pass per batch. The new statistics are those of all K batches
pooled: the mean of the batch means, and the mean of the batch variances plus the variance of
the batch means (weighted by batch size, as pycls computes it from E[x^2] - E[x]^2). That is the
variance of the layer's input over the images, which is what a single image meets at inference;
the average of batch variances alone (Detectron2) leaves out how batch means scatter and so
underestimates it, most at small batches.

Only ``keras.ops`` touch tensors, so the same code runs under TensorFlow and JAX.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np


@dataclass
class _Moments:
    """Running sums of one layer's batch statistics, in float64."""

    count: float = 0.0
    weighted_mean: np.ndarray | float = 0.0
    weighted_square: np.ndarray | float = 0.0  # sum of n * (var + mean^2) = sum of x^2

    def add(self, mean: np.ndarray, variance: np.ndarray, n: int) -> None:
        self.count += n
        self.weighted_mean = self.weighted_mean + n * mean
        self.weighted_square = self.weighted_square + n * (variance + mean * mean)

    def mean_and_variance(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.weighted_mean / self.count
        variance = np.maximum(self.weighted_square / self.count - mean * mean, 0.0)
        return mean, variance


@dataclass
class PreciseBNReport:
    """What one recomputation did: layers updated, batches and images seen, and how far the
    moving means moved (the largest absolute change, a sign of how stale they were)."""

    layers: int
    batches: int
    images: int
    max_mean_shift: float
    max_variance_ratio: float
    notes: list[str] = field(default_factory=list)


def batch_norm_layers(model: keras.layers.Layer) -> list[keras.layers.BatchNormalization]:
    """Every batch-norm layer that normalises with batch statistics when training (trainable
    ones), nested models included, in model order."""
    found: list[keras.layers.BatchNormalization] = []
    for layer in _walk(model):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            found.append(layer)
    return found


def _walk(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _walk(child)


def _recording_call(layer: keras.layers.BatchNormalization, sums: _Moments):
    original = layer.call
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]

    def call(inputs: Any, training: Any = None, mask: Any = None) -> Any:
        x = keras.ops.cast(inputs, "float32")
        reduce = tuple(i for i in range(len(x.shape)) if i != axis % len(x.shape))
        mean, variance = keras.ops.moments(x, axes=reduce)
        n = int(np.prod([x.shape[i] for i in reduce]))
        sums.add(
            keras.ops.convert_to_numpy(mean).astype(np.float64),
            keras.ops.convert_to_numpy(variance).astype(np.float64),
            n,
        )
        return original(inputs, training=training, mask=mask)

    return call


def recompute(model: keras.Model, batches: Iterable[Any], max_batches: int) -> PreciseBNReport:
    """Set every trainable batch-norm layer's moving mean and variance to the pooled statistics
    of its input over the first ``max_batches`` of ``batches`` (images, or (images, labels)
    pairs), computed in training mode with the weights unchanged."""
    if max_batches <= 0:
        raise ValueError(f"max_batches must be positive, got {max_batches}")
    layers = batch_norm_layers(model)
    if not layers:
        return PreciseBNReport(0, 0, 0, 0.0, 1.0, ["no trainable batch-norm layer"])
    sums = [_Moments() for _ in layers]
    before = [
        (
            keras.ops.convert_to_numpy(layer.moving_mean),
            keras.ops.convert_to_numpy(layer.moving_variance),
        )
        for layer in layers
    ]
    for layer, layer_sums in zip(layers, sums, strict=True):
        layer.call = _recording_call(layer, layer_sums)
    n_batches = n_images = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, tuple | list) else batch
            images = keras.ops.convert_to_numpy(images)
            model(images, training=True)
            n_batches += 1
            n_images += len(images)
            if n_batches >= max_batches:
                break
    finally:
        for layer in layers:
            del layer.call  # the class's own call again
    if n_batches == 0:
        return PreciseBNReport(len(layers), 0, 0, 0.0, 1.0, ["no batch to average over"])
    shift, ratio = 0.0, 1.0
    for layer, layer_sums, (old_mean, old_variance) in zip(layers, sums, before, strict=True):
        mean, variance = layer_sums.mean_and_variance()
        layer.moving_mean.assign(mean.astype(old_mean.dtype))
        layer.moving_variance.assign(variance.astype(old_variance.dtype))
        shift = max(shift, float(np.max(np.abs(mean - old_mean))))
        ratio = max(ratio, _worst_ratio(variance, old_variance))
    return PreciseBNReport(len(layers), n_batches, n_images, shift, ratio)


def _worst_ratio(new: np.ndarray, old: np.ndarray) -> float:
    """The largest factor between old and new variance, either way round."""
    new, old = np.maximum(new, 1e-12), np.maximum(old, 1e-12)
    return float(np.max(np.maximum(new / old, old / new)))
