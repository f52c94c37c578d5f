"""Build a backbone with a classification head, load weights, compile.

Heads follow the seed study: ``gap`` is GlobalAveragePooling + Dense(1, sigmoid) (its Part 3);
``dense`` is GlobalAveragePooling + Dense(1024) + Dropout + Dense(1, sigmoid) (its Part 1), with
switches to drop the dense layer or the dropout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from castbench.errors import UsageError
from castbench.runtime import set_random_seed
from castbench.spec import WEIGHT_CHOICES_HELP, ModelSpec

# Whole-model weight files (backbone + head) as Keras 3 saves them; both load without pickle.
_WHOLE_MODEL_SUFFIXES = (".weights.h5", ".keras")
# Backbone-only files in the format of Keras' own ImageNet downloads (HDF5, no pickle).
_BACKBONE_SUFFIXES = (".h5",)


@dataclass(frozen=True)
class ParamCounts:
    total: int
    trainable: int
    non_trainable: int


def keras_cache_dir() -> Path:
    """Where Keras looks for downloaded application weights ($KERAS_HOME/models)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _backbone_weights_argument(spec: ModelSpec) -> str | None:
    """Translate ``--weights`` into the ``weights=`` argument of the Keras constructor."""
    choice = spec.weights.strip()
    record = spec.record
    if choice.lower() == "none":
        return None
    if choice.lower() == "imagenet":
        wanted = keras_cache_dir() / record.imagenet_file_for(spec.input_size)
        if not wanted.is_file():
            raise UsageError(
                f"ImageNet weights for {record.name} are not in the local Keras cache "
                f"(looked for {wanted}); castbench never downloads: copy that file there, "
                "set KERAS_HOME, or use --weights none|PATH"
            )
        fixed = record.fixed_size_with_weights
        if fixed and spec.input_size != fixed:
            raise UsageError(
                f"{record.name} with ImageNet weights takes {fixed}x{fixed} input only, "
                f"got {spec.input_size}"
            )
        return "imagenet"
    path = Path(choice)
    if not path.is_file():
        raise UsageError(f"weights file not found: {path} ({WEIGHT_CHOICES_HELP})")
    if path.name.endswith(_WHOLE_MODEL_SUFFIXES):
        return None  # loaded into the whole model after it is built
    if path.suffix in _BACKBONE_SUFFIXES:
        return str(path)
    raise UsageError(
        f"unsupported weights file {path.name}: use a Keras .weights.h5 or .keras file for the "
        "whole model, or an application .h5 file for the backbone (pickled formats are refused)"
    )


# The seed of models built for timing and export: the same random weights in every build, so
# an artifact exported by one process can be reused by another (castbench.serving.artifacts).
BUILD_SEED = 0


def build_model(spec: ModelSpec, seed: int | None = None) -> keras.Model:
    """Backbone (include_top=False) + head, uncompiled; with ``seed``, Keras's global seed is
    set first, so random initial weights are the same in every build."""
    spec.validate()
    if seed is not None:
        set_random_seed(seed)
    record = spec.record
    size = spec.input_size
    weights = _backbone_weights_argument(spec)
    inputs = keras.Input((size, size, 3), name="image")
    try:
        base = record.build_fn()(include_top=False, weights=weights, input_shape=(size, size, 3))
    except ValueError as exc:  # Keras says why a size or weight file does not fit
        raise UsageError(f"cannot build {record.name}: {str(exc).splitlines()[0]}") from None
    base.trainable = not spec.backbone_frozen
    x = base(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    if spec.head == "dense":
        if spec.dense:
            x = keras.layers.Dense(spec.dense_units, activation="relu", name="dense")(x)
        if spec.dropout > 0:
            x = keras.layers.Dropout(spec.dropout, name="dropout")(x)
    # float32 output keeps the sigmoid and the loss stable under mixed precision
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="defect")(x)
    model = keras.Model(inputs, outputs, name=f"{record.key}_{spec.head}")
    if spec.weights.strip().endswith(_WHOLE_MODEL_SUFFIXES):
        try:
            model.load_weights(spec.weights.strip())
        except (ValueError, OSError) as exc:
            raise UsageError(
                f"cannot load {spec.weights} into {model.name}: {str(exc).splitlines()[0]}"
            ) from None
    return model


def compile_for_training(
    model: keras.Model,
    learning_rate: float = 1e-4,
    jit_compile: bool | str = "auto",
    metrics: tuple = (),
    optimizer: keras.optimizers.Optimizer | None = None,
) -> keras.Model:
    """Binary cross-entropy with ``optimizer``; by default Adam at ``learning_rate``, as the
    seed trained."""
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=list(metrics),
        jit_compile=jit_compile,
    )
    return model


def count_params(model: keras.Model) -> ParamCounts:
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(sum(np.prod(w.shape) for w in model.weights))
    return ParamCounts(total=total, trainable=trainable, non_trainable=total - trainable)
