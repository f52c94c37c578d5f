"""What an exported artifact serves: the defect probability, and beside it the head's logit
(the value before the sigmoid), which the correctness gate compares because it still differs
between images where probabilities saturate. Both come from the head's one kernel and bias, so a
wrong weight shows in both."""

from __future__ import annotations

import keras

from castbench.serving.registry import LOGIT, PROBABILITY

HEAD_LAYER = "defect"  # castbench.models names the head's sigmoid Dense layer so


class HeadLogit(keras.layers.Layer):
    """The head Dense layer's affine part, without its activation, on the head's own weights."""

    def __init__(self, head: keras.layers.Dense, **kwargs) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.head = head

    def call(self, features):
        features = keras.ops.cast(features, "float32")
        return keras.ops.matmul(features, self.head.kernel) + self.head.bias


def with_logit(model: keras.Model) -> keras.Model:
    """``model`` with two named outputs, ``probability`` and ``logit``, sharing its weights."""
    head = model.get_layer(HEAD_LAYER)
    logit = HeadLogit(head, name=LOGIT)(head.input)
    probability = keras.layers.Activation("sigmoid", dtype="float32", name=PROBABILITY)(logit)
    return keras.Model(model.inputs, {PROBABILITY: probability, LOGIT: logit}, name=model.name)
