"""Each preset does what its name says: the seed's default, additional and ablations."""

from dataclasses import fields, replace

import numpy as np
import pytest

from castbench.augment import (
    ADDITIONAL,
    PRESETS,
    AugmentPreset,
    ablation_fields,
    get_preset,
    preset_names,
)
from castbench.augment.apply import (
    adjust_hue,
    affine_transforms,
    augment_batch,
    resample,
    sample_parameters,
)
from castbench.errors import UsageError

ABLATIONS = [n for n in preset_names() if n.startswith("no-")]


def _params(preset, n=400, seed=1):
    # the generator augment_batch(..., seed=seed) draws from
    return sample_parameters(n, preset, np.random.default_rng([seed, preset.seed]))


def test_names_and_unknown_preset():
    assert preset_names() == [
        "none", "default", "additional", "no-hue-contrast", "no-shift", "no-rotation",
        "no-brightness", "no-shear", "no-zoom", "no-fill-mode", "no-flip", "flip",
    ]  # fmt: skip
    assert get_preset("No_Rotation") is PRESETS["no-rotation"]
    with pytest.raises(UsageError, match="choose from: none, default, additional"):
        get_preset("mixup")


def test_seed_parameters():
    d, a = PRESETS["default"], ADDITIONAL
    assert (d.hue_delta, d.contrast, d.seed, d.geometric) == (0.5, (0.75, 1.5), 404, False)
    assert (a.width_shift, a.height_shift, a.rotation, a.brightness) == (0.1, 0.1, 45.0, (0.9, 1.1))
    assert (a.shear, a.zoom, a.fill_mode, a.fill_value) == (5.0, 0.1, "constant", 0.0)
    assert a.horizontal_flip and a.vertical_flip and a.hue_delta == 0.5
    assert PRESETS["none"].identity


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_drops_exactly_its_transform(name):
    preset = PRESETS[name]
    changed = {
        f.name
        for f in fields(AugmentPreset)
        if getattr(preset, f.name) != getattr(ADDITIONAL, f.name)
    }
    assert changed - {"name", "description"} == set(ablation_fields(name))
    full, ablated = _params(ADDITIONAL), _params(preset)
    identity = {"theta": 0, "tx": 0, "ty": 0, "shear": 0, "zx": 1, "zy": 1, "flip_h": 0,
                "flip_v": 0, "brightness": 1, "hue": 0, "contrast": 1}  # fmt: skip
    for key, value in ablated.items():
        if np.allclose(value, full[key]):
            continue
        assert np.all(value == identity[key]), (name, key)  # only the dropped transform differs
    if name == "no-fill-mode":
        assert preset.fill_mode == "nearest"


def test_none_is_identity():
    image = np.random.default_rng(0).integers(0, 255, (2, 24, 24, 3)).astype(np.uint8)
    assert np.array_equal(augment_batch(image, "none"), image.astype(np.float32))


def test_flip_preset_mirrors_without_resampling():
    flips = PRESETS["flip"]
    assert flips.horizontal_flip and flips.vertical_flip and not flips.rotation
    p = _params(flips, n=200)
    pairs = {(int(h), int(v)) for h, v in zip(p["flip_h"], p["flip_v"], strict=True)}
    assert pairs == {(0, 0), (1, 0), (0, 1), (1, 1)}  # both single flips occur
    image = np.arange(16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)
    out = augment_batch(np.repeat(image, 64, 0), flips, seed=2)
    seen = []
    for o in out:
        for label, ref in (("none", image[0]), ("h", image[0, :, ::-1]), ("v", image[0, ::-1]),
                           ("hv", image[0, ::-1, ::-1])):  # fmt: skip
            if np.array_equal(o, ref):  # every pixel moved whole, none interpolated
                seen.append(label)
    assert len(seen) == 64 and set(seen) == {"none", "h", "v", "hv"}


def test_brightness_is_multiplicative():
    bright = AugmentPreset("b", "", brightness=(0.9, 1.1))
    image = np.concatenate([np.full((8, 16, 3), 50.0), np.full((8, 16, 3), 200.0)])[None]
    out = augment_batch(np.repeat(image, 6, 0), bright, seed=3)
    ratio = out / image
    factors = ratio[:, 0, 0, 0]
    assert np.allclose(ratio, factors[:, None, None, None], atol=1e-4)  # one factor per image
    assert np.all((factors >= 0.9) & (factors <= 1.1)) and np.ptp(factors) > 0


def _rotation(degrees, n=1):
    one = np.ones(n, np.float32)
    params = {"theta": degrees * one, "tx": 0 * one, "ty": 0 * one, "shear": 0 * one,
              "zx": one, "zy": one}  # fmt: skip
    return affine_transforms(params, 32, 32)


def test_constant_fill_is_zero_nearest_is_not():
    image = np.full((1, 32, 32, 3), 180.0, np.float32)
    for mode, corner in (("constant", 0.0), ("nearest", 180.0)):
        preset = AugmentPreset("r", "", rotation=45.0, fill_mode=mode)
        out = resample(image, _rotation(45.0), preset)[0]
        for y, x in ((0, 0), (0, 31), (31, 0), (31, 31)):
            assert out[y, x, 0] == pytest.approx(corner)
        assert out[16, 16, 0] == pytest.approx(180.0)
    # Through the preset: large rotations leave black corners with constant fill.
    rotate = AugmentPreset("r", "", rotation=45.0)
    many = augment_batch(np.full((40, 32, 32, 3), 180.0), rotate, seed=0)
    turned = np.abs(_params(rotate, n=40, seed=0)["theta"]) > 20
    assert turned.any() and np.all(many[turned][:, 0, 0] == 0.0)


def test_a_quarter_turn_moves_whole_pixels():
    image = np.random.default_rng(3).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    turned = resample(image, _rotation(90.0), AugmentPreset("r", "", rotation=90.0))
    # about the centre (15.5, 15.5): output pixel (row r, column c) samples input (c, 31 - r)
    np.testing.assert_allclose(turned[0], np.rot90(image[0]), atol=1e-3)


@pytest.mark.parametrize("mode", ["constant", "nearest"])
def test_resampling_matches_tensorflows_kernel(mode):
    tf = pytest.importorskip("tensorflow")  # the reference, where it is installed
    image = np.random.default_rng(1).uniform(0, 255, (6, 40, 40, 3)).astype(np.float32)
    preset = replace(ADDITIONAL, fill_mode=mode, fill_value=7.0)
    params = sample_parameters(6, preset, np.random.default_rng(4))
    matrices = affine_transforms(params, 40, 40)
    rows = np.concatenate([matrices.reshape(6, 6), np.zeros((6, 2), np.float32)], axis=1)
    reference = tf.raw_ops.ImageProjectiveTransformV3(
        images=image, transforms=rows, output_shape=[40, 40], fill_value=7.0,
        interpolation="BILINEAR", fill_mode=mode.upper(),
    ).numpy()  # fmt: skip
    np.testing.assert_allclose(resample(image, matrices, preset), reference, atol=1e-3)


def test_hue_turns_the_colour_circle():
    primaries = np.array([[[[255.0, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90]]]], np.float32)
    third = adjust_hue(primaries, np.array([1 / 3], np.float32))[0, 0]
    np.testing.assert_allclose(third, [[0, 255, 0], [0, 0, 255], [255, 0, 0], [90, 90, 90]],
                               atol=1e-3)  # fmt: skip
    whole = adjust_hue(primaries, np.array([1.0], np.float32))
    np.testing.assert_allclose(whole, primaries, atol=1e-3)
    grey = np.full((2, 4, 4, 3), 77.0, np.float32)
    assert np.array_equal(adjust_hue(grey, np.array([0.3, -0.2], np.float32)), grey)


def test_hue_and_contrast_match_tf_image():
    tf = pytest.importorskip("tensorflow")  # the reference, where it is installed
    image = np.random.default_rng(1).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    default = PRESETS["default"]
    out = augment_batch(image, default, seed=7)
    p = _params(default, n=3, seed=7)
    for i in range(3):
        ref = tf.image.adjust_hue(image[i], float(p["hue"][i]))
        ref = tf.image.adjust_contrast(ref, float(p["contrast"][i])).numpy()
        np.testing.assert_allclose(out[i], ref, atol=0.05)


def test_seeded_and_varied():
    image = np.random.default_rng(2).uniform(0, 255, (4, 16, 16, 3))
    a = augment_batch(image, "additional", seed=5)
    assert np.array_equal(a, augment_batch(image, "additional", seed=5))
    assert not np.allclose(a, augment_batch(image, "additional", seed=6))
