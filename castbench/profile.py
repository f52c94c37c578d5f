"""A model's static profile: parameter counts and counted forward FLOPs."""

from __future__ import annotations

from typing import Any

import keras

from castbench.flops import forward_flops_per_image
from castbench.models import build_model, count_params
from castbench.spec import ModelSpec


def profile_model(model: keras.Model, count_flops: bool = True) -> dict[str, Any]:
    params = count_params(model)
    flops = forward_flops_per_image(model) if count_flops else None
    return {
        "params_total": params.total,
        "params_trainable": params.trainable,
        "params_non_trainable": params.non_trainable,
        "gflops_per_image": None if flops is None else flops / 1e9,
    }


def describe_model(spec: ModelSpec, count_flops: bool = True) -> dict[str, Any]:
    """Build ``spec`` and report its size and cost; frees the model afterwards."""
    model = build_model(spec)
    try:
        info = {
            "backbone": spec.record.name,
            "head": spec.head_label,
            "trainable": spec.trainable,
            "input_size": spec.input_size,
            "backend": keras.backend.backend(),
            **profile_model(model, count_flops),
        }
    finally:
        del model
        keras.backend.clear_session()
    return info
