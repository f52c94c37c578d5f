"""Applying an augmentation preset to a batch, in numpy: one combined affine transform per image
(bilinear, as ImageDataGenerator's), then the flips, multiplicative brightness, hue and
contrast, in ImageDataGenerator + the seed's preprocessing function's order.

numpy, not a framework: the input pipeline runs these on worker threads for every Keras
backend, so TensorFlow, JAX and PyTorch train on the same pixels. The resampling follows
TensorFlow's ``ImageProjectiveTransformV3`` (integer pixel coordinates, each neighbour outside
the image read as the fill value); hue and contrast follow ``tf.image.adjust_hue`` and
``tf.image.adjust_contrast``. The tests hold them to those kernels where TensorFlow is
installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from castbench.augment import AugmentPreset, get_preset

# Columns of the per-image uniform draws; every column is drawn whatever the preset, so an
# ablation changes only its own transform, not the draws of the others.
_THETA, _TX, _TY, _SHEAR, _ZX, _ZY, _FLIP_H, _FLIP_V, _BRIGHT, _HUE, _CONTRAST = range(11)
_N_DRAWS = 11


def augment_batch(
    images: np.ndarray, preset: str | AugmentPreset, seed: int | Sequence[int] = 0
) -> np.ndarray:
    """Augment a uint8/float batch [B, H, W, 3] of 0..255 pixels; float32 out, 0..255 before
    contrast (which, like tf.image.adjust_contrast, does not clip). Same seed, same output."""
    preset = get_preset(preset)
    pixels = np.array(images, np.float32)  # a copy: the flips and brightness work in place
    if preset.identity:
        return pixels
    rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), preset.seed])
    params = sample_parameters(len(pixels), preset, rng)
    if preset.resamples:
        height, width = pixels.shape[1:3]
        pixels = resample(pixels, affine_transforms(params, height, width), preset)
    pixels = _flip(pixels, params["flip_h"] > 0, axis=2)
    pixels = _flip(pixels, params["flip_v"] > 0, axis=1)
    if preset.brightness:  # ImageDataGenerator: PIL ImageEnhance.Brightness, clipped to 0..255
        np.clip(pixels * params["brightness"][:, None, None, None], 0.0, 255.0, out=pixels)
    if preset.hue_delta:
        pixels = adjust_hue(pixels, params["hue"])
    if preset.contrast:  # tf.image.adjust_contrast: per image and channel, unclipped
        mean = pixels.mean(axis=(1, 2), keepdims=True)
        pixels = (pixels - mean) * params["contrast"][:, None, None, None] + mean
    return pixels


def sample_parameters(
    batch: int, preset: AugmentPreset, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per-image random parameters, drawn like ImageDataGenerator.get_random_transform and
    the seed's random_hue / random_contrast; a switched-off transform gets its identity."""
    u = rng.random((batch, _N_DRAWS), dtype=np.float32)

    def spread(column: int, low: float, high: float) -> np.ndarray:
        return low + (high - low) * u[:, column]

    def symmetric(column: int, limit: float) -> np.ndarray:
        return spread(column, -limit, limit) if limit else np.zeros(batch, np.float32)

    def around_one(column: int, bounds: tuple[float, float] | None) -> np.ndarray:
        return spread(column, *bounds) if bounds else np.ones(batch, np.float32)

    zoom = (1 - preset.zoom, 1 + preset.zoom) if preset.zoom else None
    return {
        "theta": symmetric(_THETA, preset.rotation),
        "tx": symmetric(_TX, preset.width_shift),
        "ty": symmetric(_TY, preset.height_shift),
        "shear": symmetric(_SHEAR, preset.shear),
        "zx": around_one(_ZX, zoom),
        "zy": around_one(_ZY, zoom),
        "flip_h": (u[:, _FLIP_H] < 0.5).astype(np.float32) * preset.horizontal_flip,
        "flip_v": (u[:, _FLIP_V] < 0.5).astype(np.float32) * preset.vertical_flip,
        "brightness": around_one(_BRIGHT, preset.brightness),
        "hue": symmetric(_HUE, preset.hue_delta),
        "contrast": around_one(_CONTRAST, preset.contrast),
    }


def affine_transforms(params: dict[str, np.ndarray], height: int, width: int) -> np.ndarray:
    """[B, 2, 3] matrices mapping an output pixel (x = column, y = row, 1) to the input point
    it samples.

    The composition is ImageDataGenerator's (apply_affine_transform): rotation · shift · shear
    · zoom about the image centre, with shifts as fractions of the width and height.
    """
    theta = np.radians(params["theta"].astype(np.float64))
    shear = np.radians(params["shear"].astype(np.float64))
    tx, ty = params["tx"] * width, params["ty"] * height
    zx, zy = params["zx"], params["zy"]
    one, zero = np.ones_like(theta), np.zeros_like(theta)

    def matrix(*rows: np.ndarray | float) -> np.ndarray:  # [B, 3, 3] from nine [B] rows
        return np.stack(np.broadcast_arrays(*rows), axis=1).reshape(-1, 3, 3)

    cos, sin = np.cos(theta), np.sin(theta)
    rotate = matrix(cos, -sin, zero, sin, cos, zero, zero, zero, one)
    shift = matrix(one, zero, tx, zero, one, ty, zero, zero, one)
    shear_m = matrix(one, -np.sin(shear), zero, zero, np.cos(shear), zero, zero, zero, one)
    zoom = matrix(zx, zero, zero, zero, zy, zero, zero, zero, one)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    to_centre = matrix(one, zero, cx, zero, one, cy, zero, zero, one)
    from_centre = matrix(one, zero, -cx, zero, one, -cy, zero, zero, one)
    full = to_centre @ rotate @ shift @ shear_m @ zoom @ from_centre
    return full[:, :2, :].astype(np.float32)


def resample(pixels: np.ndarray, transforms: np.ndarray, preset: AugmentPreset) -> np.ndarray:
    """Bilinear sampling of each image at its transform's points; outside the image, the
    preset's constant fill value or (``nearest``) the closest edge pixel."""
    batch, height, width, channels = pixels.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    a = transforms[:, :, :, None, None]  # [B, 2, 3, 1, 1] against [H, W] grids
    x = a[:, 0, 0] * cols + a[:, 0, 1] * rows + a[:, 0, 2]
    y = a[:, 1, 0] * cols + a[:, 1, 1] * rows + a[:, 1, 2]
    if preset.fill_mode == "nearest":
        x, y = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
    # Two fill-valued pixels around each image: a point further out reads both neighbours
    # from them, a point within one pixel of the edge blends the edge with the fill.
    padded = np.full((batch, height + 4, width + 4, channels), preset.fill_value, np.float32)
    padded[:, 2:-2, 2:-2] = pixels
    flat = padded.reshape(-1, channels)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    col = np.clip(x0, -2, width).astype(np.int64) + 2  # +2: the padding's offset
    row = np.clip(y0, -2, height).astype(np.int64) + 2
    base = np.arange(batch)[:, None, None] * ((height + 4) * (width + 4))
    top = base + row * (width + 4) + col
    bottom = top + (width + 4)
    upper = flat[top] * (1 - fx) + flat[top + 1] * fx
    lower = flat[bottom] * (1 - fx) + flat[bottom + 1] * fx
    return upper * (1 - fy) + lower * fy


def _flip(pixels: np.ndarray, chosen: np.ndarray, axis: int) -> np.ndarray:
    """Mirror the chosen images along ``axis``: whole pixels move, none is interpolated."""
    if chosen.any():
        pixels[chosen] = np.flip(pixels[chosen], axis=axis)
    return pixels


def adjust_hue(pixels: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Rotate each image's hue by ``delta`` (a fraction of the colour circle), keeping
    saturation and value, as ``tf.image.adjust_hue`` does; works on any pixel scale."""
    value = pixels.max(axis=-1)
    spread = value - pixels.min(axis=-1)
    if not spread.any():  # grey images (the casting photographs) have no hue to turn
        return pixels
    safe = np.where(spread > 0, spread, 1.0)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    hue = np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    hue = np.where(value == r, (g - b) / safe, hue)
    hue = np.where(spread > 0, hue, 0.0) / 6.0
    hue = np.mod(hue + delta[:, None, None], 1.0) * 6.0
    # HSV back to RGB: channel n is value - spread * clip(min(k, 4 - k), 0, 1), k = (n + hue) % 6
    out = np.empty_like(pixels)
    for channel, n in enumerate((5.0, 3.0, 1.0)):
        k = np.mod(n + hue, 6.0)
        out[..., channel] = value - spread * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return out
