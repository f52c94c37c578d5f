"""Layers whose constants a converter would otherwise take for inputs. Keras's Normalization
layer keeps its mean and variance as tensors computed when it is built (EfficientNet's first
layers); traced for export they are captured from outside the graph, and tf2onnx leaves each as
a graph input that no runtime can feed. Handed over as NumPy arrays instead, they are traced as
constants, which the converters fold into the graph."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import numpy as np


def _layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):  # a nested backbone
            yield from _layers(layer)


@contextlib.contextmanager
def normalization_constants_inlined(model: keras.Model) -> Iterator[None]:
    """Within the block, every built Normalization layer of ``model`` holds its mean and
    variance as NumPy arrays of the same values; afterwards, its own tensors again."""
    built = (layer for layer in _layers(model) if getattr(layer, "mean", None) is not None)
    layers = [layer for layer in built if isinstance(layer, keras.layers.Normalization)]
    kept = [(layer, layer.mean, layer.variance) for layer in layers]
    try:
        for layer in layers:
            layer.mean = np.asarray(keras.ops.convert_to_numpy(layer.mean))
            layer.variance = np.asarray(keras.ops.convert_to_numpy(layer.variance))
        yield
    finally:
        for layer, mean, variance in kept:
            layer.mean, layer.variance = mean, variance
