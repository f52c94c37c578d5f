import pytest

from castbench import backbones
from castbench.errors import UsageError

SEED_BACKBONES = [
    "Xception", "VGG16", "ResNet50", "ResNet101V2", "InceptionV3",
    "InceptionResNetV2", "MobileNetV2", "DenseNet169", "NASNetMobile", "EfficientNetB4",
]  # fmt: skip


def test_registry_holds_the_seed_backbones_in_order():
    assert backbones.names() == SEED_BACKBONES


@pytest.mark.parametrize("spelling", ["efficientnetb4", "EfficientNetB4", " EFFICIENTNETB4 "])
def test_lookup_ignores_case(spelling):
    assert backbones.get(spelling).name == "EfficientNetB4"


def test_unknown_name_lists_valid_names_in_one_line():
    with pytest.raises(UsageError) as info:
        backbones.get("resnet9000")
    message = str(info.value)
    assert "\n" not in message
    assert "resnet9000" in message and "MobileNetV2" in message
    assert info.value.exit_code == 2


def test_resolve_accepts_all_commas_and_drops_repeats():
    assert len(backbones.resolve(["all"])) == 10
    assert len(backbones.resolve(None)) == 10
    picked = backbones.resolve(["vgg16,mobilenetv2", "VGG16"])
    assert [b.name for b in picked] == ["VGG16", "MobileNetV2"]


def test_native_sizes_match_keras_defaults():
    sizes = {b.name: b.native_size for b in backbones.BACKBONES}
    assert sizes["Xception"] == 299 and sizes["InceptionV3"] == 299
    assert sizes["EfficientNetB4"] == 380 and sizes["MobileNetV2"] == 224


def test_each_record_resolves_to_its_keras_functions():
    for record in backbones.BACKBONES:
        assert record.build_fn().__name__ == record.constructor
        assert callable(record.preprocess_fn())


def test_mobilenet_v2_weight_file_follows_input_size():
    record = backbones.get("mobilenetv2")
    assert record.imagenet_file_for(160).endswith("_1.0_160_no_top.h5")
    assert record.imagenet_file_for(300).endswith("_1.0_224_no_top.h5")
