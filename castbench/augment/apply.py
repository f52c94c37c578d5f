"""Applying an augmentation preset to a batch, in TensorFlow: one combined affine transform per
image via ImageProjectiveTransformV3, then multiplicative brightness, then hue and contrast, as
ImageDataGenerator + the seed's preprocessing function did. The input pipeline applies it to
each batch; previews and tests call :func:`augment_batch` eagerly.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from castbench.augment import AugmentPreset, get_preset

# Columns of the per-image uniform draws; every column is drawn whatever the preset, so an
# ablation changes only its own transform, not the draws of the others.
_THETA, _TX, _TY, _SHEAR, _ZX, _ZY, _FLIP_H, _FLIP_V, _BRIGHT, _HUE, _CONTRAST = range(11)
_N_DRAWS = 11


def augment_batch(images: np.ndarray, preset: str | AugmentPreset, seed: int = 0) -> np.ndarray:
    """Augment a uint8/float batch [B, H, W, 3] eagerly (previews, tests); float32 0..255."""
    preset = get_preset(preset)
    pixels = tf.convert_to_tensor(np.asarray(images, np.float32))
    if preset.identity:
        return pixels.numpy()
    return augment_tensor(pixels, preset, tf.constant([seed, preset.seed], tf.int64)).numpy()


def sample_parameters(batch: int, preset: AugmentPreset, seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-image random parameters, drawn like ImageDataGenerator.get_random_transform and
    the seed's random_hue / random_contrast; a switched-off transform gets its identity."""
    u = tf.random.stateless_uniform([batch, _N_DRAWS], seed=seed, dtype=tf.float32)

    def spread(column: int, low: float, high: float) -> tf.Tensor:
        return low + (high - low) * u[:, column]

    ones, zeros = tf.ones([batch]), tf.zeros([batch])
    p = {
        "theta": spread(_THETA, -preset.rotation, preset.rotation) if preset.rotation else zeros,
        "tx": spread(_TX, -preset.width_shift, preset.width_shift) if preset.width_shift else zeros,
        "ty": spread(_TY, -preset.height_shift, preset.height_shift)
        if preset.height_shift
        else zeros,
        "shear": spread(_SHEAR, -preset.shear, preset.shear) if preset.shear else zeros,
        "zx": spread(_ZX, 1 - preset.zoom, 1 + preset.zoom) if preset.zoom else ones,
        "zy": spread(_ZY, 1 - preset.zoom, 1 + preset.zoom) if preset.zoom else ones,
        "flip_h": tf.cast(u[:, _FLIP_H] < 0.5, tf.float32) if preset.horizontal_flip else zeros,
        "flip_v": tf.cast(u[:, _FLIP_V] < 0.5, tf.float32) if preset.vertical_flip else zeros,
        "brightness": spread(_BRIGHT, *preset.brightness) if preset.brightness else ones,
        "hue": spread(_HUE, -preset.hue_delta, preset.hue_delta) if preset.hue_delta else zeros,
        "contrast": spread(_CONTRAST, *preset.contrast) if preset.contrast else ones,
    }
    return p


def affine_transforms(params: dict[str, tf.Tensor], height: int, width: int) -> tf.Tensor:
    """[B, 8] ImageProjectiveTransform rows mapping output (x, y) to input pixels.

    The composition is ImageDataGenerator's (apply_affine_transform): rotation · shift · shear
    · zoom about the image centre, in (x = column, y = row) coordinates with shifts as
    fractions of the width and height; the flips that ImageDataGenerator applies afterwards are
    folded into the same matrix.
    """
    theta = params["theta"] * (math.pi / 180.0)
    shear = params["shear"] * (math.pi / 180.0)
    tx, ty = params["tx"] * width, params["ty"] * height
    zx, zy = params["zx"], params["zy"]
    one, zero = tf.ones_like(theta), tf.zeros_like(theta)

    def matrix(*rows):  # 3x3 from nine [B] tensors, row-major
        return tf.reshape(tf.stack(rows, axis=1), [-1, 3, 3])

    rotate = matrix(
        tf.cos(theta), -tf.sin(theta), zero, tf.sin(theta), tf.cos(theta), zero, zero, zero, one
    )
    shift = matrix(one, zero, tx, zero, one, ty, zero, zero, one)
    shear_m = matrix(one, -tf.sin(shear), zero, zero, tf.cos(shear), zero, zero, zero, one)
    zoom = matrix(zx, zero, zero, zero, zy, zero, zero, zero, one)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    to_centre = matrix(one, zero, cx * one, zero, one, cy * one, zero, zero, one)
    from_centre = matrix(one, zero, -cx * one, zero, one, -cy * one, zero, zero, one)
    fh, fv = params["flip_h"], params["flip_v"]
    flip_h = matrix(1 - 2 * fh, zero, fh * (width - 1), zero, one, zero, zero, zero, one)
    flip_v = matrix(one, zero, zero, zero, 1 - 2 * fv, fv * (height - 1), zero, zero, one)
    full = to_centre @ rotate @ shift @ shear_m @ zoom @ from_centre @ flip_h @ flip_v
    return tf.concat([full[:, 0, :], full[:, 1, :], tf.zeros([tf.shape(full)[0], 2])], axis=1)


def augment_tensor(pixels: tf.Tensor, preset: AugmentPreset, seed: tf.Tensor) -> tf.Tensor:
    """Augment a float32 batch [B, H, W, 3] of 0..255 pixels with ``preset``."""
    shape = tf.shape(pixels)
    batch = shape[0]
    height, width = pixels.shape[1], pixels.shape[2]
    params = sample_parameters(batch, preset, seed)
    if preset.geometric:
        pixels = tf.raw_ops.ImageProjectiveTransformV3(
            images=pixels,
            transforms=affine_transforms(params, height, width),
            output_shape=tf.stack([height, width]),
            fill_value=tf.constant(preset.fill_value, tf.float32),
            interpolation="BILINEAR",
            fill_mode=preset.fill_mode.upper(),
        )
    if preset.brightness:  # ImageDataGenerator: PIL ImageEnhance.Brightness, clipped to 0..255
        pixels = tf.clip_by_value(pixels * params["brightness"][:, None, None, None], 0.0, 255.0)
    if preset.hue_delta:  # tf.image.adjust_hue (a fused kernel), one delta per image
        pixels = tf.map_fn(
            lambda item: tf.image.adjust_hue(item[0], item[1]),
            (pixels, params["hue"]),
            fn_output_signature=tf.float32,
        )
    if preset.contrast:  # tf.image.adjust_contrast: per image and channel, unclipped
        mean = tf.reduce_mean(pixels, axis=[1, 2], keepdims=True)
        pixels = (pixels - mean) * params["contrast"][:, None, None, None] + mean
    return pixels
