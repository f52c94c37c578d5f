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
layer's ``call`` during one compiled forward pass per full batch. The new statistics are those
of all K batches pooled: the mean of the batch means, and the mean of the batch variances plus
the variance of the batch means (E[x^2] - E[x]^2 over all images, as pycls computes it). That is
the variance of the layer's input over the images, which is what a single image meets at
inference; the average of batch variances alone (Detectron2) leaves out how batch means scatter
and so underestimates it, most at small batches.

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


def _recording_call(layer: keras.layers.BatchNormalization, slot: dict[int, Any], index: int):
    """``layer.call`` that first stores its input's per-channel mean and variance in
    ``slot[index]``."""
    original = layer.call
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]

    def call(inputs: Any, training: Any = None, mask: Any = None) -> Any:
        x = keras.ops.cast(inputs, "float32")
        reduce = tuple(i for i in range(len(x.shape)) if i != axis % len(x.shape))
        slot[index] = keras.ops.moments(x, axes=reduce)
        return original(inputs, training=training, mask=mask)

    return call


class _Probe(keras.Model):
    """Runs the model in training mode and returns every recorded layer's batch mean and
    variance, so ``predict_on_batch`` compiles the whole pass (graph or XLA) instead of running
    it op by op."""

    def __init__(self, model: keras.Model, slot: dict[int, Any], n_layers: int):
        super().__init__(name="precise_bn_probe")
        self.inner = model
        self._n_layers = n_layers
        # Keras would track (and copy) a dict attribute; the wrapped calls write into this one.
        self._read_slot = lambda: slot

    def call(self, images: Any) -> list[Any]:
        slot = self._read_slot()
        slot.clear()
        self.inner(images, training=True)
        return [v for i in range(self._n_layers) for v in slot[i]]


def recompute(model: keras.Model, batches: Iterable[Any], max_batches: int) -> PreciseBNReport:
    """Set every trainable batch-norm layer's moving mean and variance to the pooled statistics
    of its input over the first ``max_batches`` full batches of ``batches`` (images, or (images,
    labels) pairs; a batch smaller than the first, the end of an epoch, is skipped), computed in
    training mode with the weights unchanged."""
    if max_batches <= 0:
        raise ValueError(f"max_batches must be positive, got {max_batches}")
    layers = batch_norm_layers(model)
    if not layers:
        return PreciseBNReport(0, 0, 0, 0.0, 1.0, ["no trainable batch-norm layer"])
    sums = [_Moments() for _ in layers]
    slot: dict[int, Any] = {}
    for index, layer in enumerate(layers):
        layer.call = _recording_call(layer, slot, index)
    n_batches = n_images = 0
    try:
        probe = _Probe(model, slot, len(layers))
        # TensorFlow traces a graph faster than XLA compiles one; JAX has no graph mode but jit.
        probe.compile(jit_compile=keras.backend.backend() == "jax")
        for images in _full_batches(batches):
            moments = probe.predict_on_batch(images)
            for index, layer_sums in enumerate(sums):
                mean, variance = moments[2 * index], moments[2 * index + 1]
                layer_sums.add(mean.astype(np.float64), variance.astype(np.float64), len(images))
            n_batches += 1
            n_images += len(images)
            if n_batches >= max_batches:
                break
    finally:
        for layer in layers:
            del layer.call  # the class's own call again
    if n_batches == 0:
        return PreciseBNReport(len(layers), 0, 0, 0.0, 1.0, ["no batch to average over"])
    return _assign(layers, sums, n_batches, n_images)


def _full_batches(batches: Iterable[Any]) -> Iterator[np.ndarray]:
    size = None
    for batch in batches:
        images = batch[0] if isinstance(batch, tuple | list) else batch
        images = keras.ops.convert_to_numpy(images)
        size = size or len(images)
        if len(images) == size:
            yield images


def _assign(layers, sums: list[_Moments], n_batches: int, n_images: int) -> PreciseBNReport:
    shift, ratio = 0.0, 1.0
    for layer, layer_sums in zip(layers, sums, strict=True):
        old_mean = keras.ops.convert_to_numpy(layer.moving_mean)
        old_variance = keras.ops.convert_to_numpy(layer.moving_variance)
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
