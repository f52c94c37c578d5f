"""Each preset does what its name says: the seed's default, additional and ablations."""

from dataclasses import fields

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
from castbench.errors import UsageError

tf = pytest.importorskip("tensorflow")
from castbench.augment.apply import augment_batch, augment_tensor, sample_parameters  # noqa: E402

ABLATIONS = [n for n in preset_names() if n.startswith("no-")]


def _params(preset, n=400, seed=1):
    p = sample_parameters(n, preset, tf.constant([seed, preset.seed], tf.int64))
    return {k: v.numpy() for k, v in p.items()}


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
    out = augment_tensor(tf.constant(np.repeat(image, 64, 0)), flips, tf.constant([2, 3], tf.int64))
    seen = []
    for o in out.numpy():
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


def test_constant_fill_is_zero_nearest_is_not():
    image = tf.constant(np.full((1, 32, 32, 3), 180.0, np.float32))
    params = {"theta": tf.constant([45.0]), "tx": tf.zeros(1), "ty": tf.zeros(1),
              "shear": tf.zeros(1), "zx": tf.ones(1), "zy": tf.ones(1), "flip_h": tf.zeros(1),
              "flip_v": tf.zeros(1)}  # fmt: skip
    from castbench.augment.apply import affine_transforms

    for mode, corner in (("CONSTANT", 0.0), ("NEAREST", 180.0)):
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=image, transforms=affine_transforms(params, 32, 32), output_shape=[32, 32],
            fill_value=0.0, interpolation="BILINEAR", fill_mode=mode,
        ).numpy()[0]  # fmt: skip
        for y, x in ((0, 0), (0, 31), (31, 0), (31, 31)):
            assert out[y, x, 0] == pytest.approx(corner)
        assert out[16, 16, 0] == pytest.approx(180.0)
    # Through the preset: large rotations leave black corners with constant fill.
    rotate = AugmentPreset("r", "", rotation=45.0)
    many = augment_batch(np.full((40, 32, 32, 3), 180.0), rotate, seed=0)
    turned = np.abs(_params(rotate, n=40, seed=0)["theta"]) > 20
    assert turned.any() and np.all(many[turned][:, 0, 0] == 0.0)


def test_hue_and_contrast_match_tf_image():
    image = np.random.default_rng(1).uniform(0, 255, (3, 12, 12, 3)).astype(np.float32)
    default = PRESETS["default"]
    seed = tf.constant([7, 404], tf.int64)
    out = augment_tensor(tf.constant(image), default, seed).numpy()
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
