"""Which timm model stands in for each castbench backbone (timm 1.0 registry names).

Each is the same architecture as the Keras application, built by timm's own code. timm has no
NASNet-A Mobile (only NASNet-A Large), so that backbone has no peer.
"""

from __future__ import annotations

from castbench import backbones

TIMM_NAMES: dict[str, str | None] = {
    "Xception": "legacy_xception",
    "VGG16": "vgg16",
    "ResNet50": "resnet50",
    "ResNet101V2": "resnetv2_101",
    "InceptionV3": "inception_v3",
    "InceptionResNetV2": "inception_resnet_v2",
    "MobileNetV2": "mobilenetv2_100",
    "DenseNet169": "densenet169",
    "NASNetMobile": None,
    "EfficientNetB4": "efficientnet_b4",
}
NO_EQUIVALENT = "no timm equivalent"


def timm_name(backbone: str) -> str | None:
    """The timm model for a castbench backbone (any case), or None where timm has none."""
    return TIMM_NAMES[backbones.get(backbone).name]
