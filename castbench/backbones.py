"""The backbone registry: one frozen record per backbone, as data.

Everything else in castbench looks a backbone up here; nothing else names a Keras
application constructor or its preprocessing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from castbench.errors import UsageError

# MobileNetV2 ships ImageNet weights for these square sizes only.
_MOBILENET_V2_WEIGHT_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class Backbone:
    """What castbench knows about one Keras application."""

    name: str
    family: str
    module: str  # keras.applications submodule holding the constructor and preprocess_input
    constructor: str
    native_size: int
    min_size: int
    preprocessing: str  # how preprocess_input scales pixels, for humans
    imagenet_notop_file: str  # file name Keras caches under $KERAS_HOME/models
    fixed_size_with_weights: int | None = None  # size forced when ImageNet weights load

    @property
    def key(self) -> str:
        return self.name.lower()

    def build_fn(self) -> Callable:
        module = importlib.import_module(f"keras.applications.{self.module}")
        return getattr(module, self.constructor)

    def preprocess_fn(self) -> Callable:
        return importlib.import_module(f"keras.applications.{self.module}").preprocess_input

    def imagenet_file_for(self, size: int) -> str:
        if self.name == "MobileNetV2":
            rows = size if size in _MOBILENET_V2_WEIGHT_SIZES else 224
            return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        return self.imagenet_notop_file


_TF_DIM = "weights_tf_dim_ordering_tf_kernels_notop.h5"
_MOBILENET_V2_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"

BACKBONES: tuple[Backbone, ...] = (
    Backbone(
        "Xception",
        "Xception",
        "xception",
        "Xception",
        299,
        71,
        "scale to [-1, 1]",
        f"xception_{_TF_DIM}",
    ),
    Backbone(
        "VGG16",
        "VGG",
        "vgg16",
        "VGG16",
        224,
        32,
        "caffe (BGR, ImageNet mean subtracted)",
        f"vgg16_{_TF_DIM}",
    ),
    Backbone(
        "ResNet50",
        "ResNet",
        "resnet50",
        "ResNet50",
        224,
        32,
        "caffe (BGR, ImageNet mean subtracted)",
        f"resnet50_{_TF_DIM}",
    ),
    Backbone(
        "ResNet101V2",
        "ResNet",
        "resnet_v2",
        "ResNet101V2",
        224,
        32,
        "scale to [-1, 1]",
        f"resnet101v2_{_TF_DIM}",
    ),
    Backbone(
        "InceptionV3",
        "Inception",
        "inception_v3",
        "InceptionV3",
        299,
        75,
        "scale to [-1, 1]",
        f"inception_v3_{_TF_DIM}",
    ),
    Backbone(
        "InceptionResNetV2",
        "InceptionResNet",
        "inception_resnet_v2",
        "InceptionResNetV2",
        299,
        75,
        "scale to [-1, 1]",
        f"inception_resnet_v2_{_TF_DIM}",
    ),
    Backbone(
        "MobileNetV2",
        "MobileNet",
        "mobilenet_v2",
        "MobileNetV2",
        224,
        32,
        "scale to [-1, 1]",
        _MOBILENET_V2_FILE,
    ),
    Backbone(
        "DenseNet169",
        "DenseNet",
        "densenet",
        "DenseNet169",
        224,
        32,
        "torch (scale to [0, 1], ImageNet mean/std)",
        f"densenet169_{_TF_DIM}",
    ),
    Backbone(
        "NASNetMobile",
        "NASNet",
        "nasnet",
        "NASNetMobile",
        224,
        32,
        "scale to [-1, 1]",
        "nasnet_mobile_no_top.h5",
        fixed_size_with_weights=224,
    ),
    Backbone(
        "EfficientNetB4",
        "EfficientNet",
        "efficientnet",
        "EfficientNetB4",
        380,
        32,
        "none (the model rescales [0, 255] itself)",
        "efficientnetb4_notop.h5",
    ),
)

_BY_KEY = {b.key: b for b in BACKBONES}


def names() -> list[str]:
    return [b.name for b in BACKBONES]


def get(name: str) -> Backbone:
    """Look a backbone up by name, case-insensitively."""
    try:
        return _BY_KEY[name.strip().lower()]
    except KeyError:
        raise UsageError(f"unknown backbone {name!r}; choose from: {', '.join(names())}") from None


def resolve(selection: list[str] | None) -> list[Backbone]:
    """Turn a user's list of names (or ``all`` / nothing) into registry records, in order given."""
    if not selection or [s.lower() for s in selection] == ["all"]:
        return list(BACKBONES)
    picked: list[Backbone] = []
    for item in selection:
        for part in item.split(","):
            if part.strip():
                backbone = get(part)
                if backbone not in picked:
                    picked.append(backbone)
    if not picked:
        raise UsageError("no backbone selected")
    return picked
