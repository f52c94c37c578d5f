"""Drawing one synthetic casting image: a grey impeller top view in a random pose and lighting,
with the defects a defective casting carries (:mod:`castbench.data.synth` lays the images out as
the Kaggle set). Every draw comes from the Generator it is given, in a fixed order, so the same
seed gives the same pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# How visible defects are (1 = as drawn below). Tuned so that a small CNN trained for three
# epochs at 128 px scores well below 100 % (about 75-80 %: scripts/small_cnn_check.py).
DEFECT_STRENGTH = 3.0


@dataclass(frozen=True)
class _Pose:
    """Where the casting lies: centre, outer radius, and each pixel's radius (in outer radii)
    and angle about the centre."""

    cx: float
    cy: float
    radius: float
    r: np.ndarray
    theta_abs: np.ndarray

    def point(self, rr: float, angle: float) -> tuple[float, float]:
        """The pixel at ``rr`` outer radii from the centre, at ``angle``."""
        x = self.cx + rr * self.radius * np.cos(angle)
        return x, self.cy + rr * self.radius * np.sin(angle)


def _step(r: np.ndarray, edge: float, width: float = 0.012) -> np.ndarray:
    """0 inside ``edge``, 1 outside, with a linear ramp ``width`` wide."""
    return np.clip((r - edge) / width + 0.5, 0.0, 1.0)


class Canvas:
    """Draws one casting image; holds the pixel grid so it is built once per run."""

    def __init__(self, size: int):
        self.size = size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.xx, self.yy = xx, yy

    def _noise(self, rng: np.random.Generator, cells: int, sigma: float) -> np.ndarray:
        """Smooth noise: a coarse random grid upsampled bicubically."""
        coarse = rng.standard_normal((cells, cells), dtype=np.float32)
        image = Image.fromarray(coarse, "F").resize((self.size, self.size), Image.BICUBIC)
        return np.asarray(image) * sigma

    def render(self, rng: np.random.Generator, defective: bool) -> np.ndarray:
        s = self.size
        # Pose: centre jitter, outer radius, rotation; lighting: gain, direction, strength.
        cx = s / 2 + rng.normal(0, 7)
        cy = s / 2 + rng.normal(0, 7)
        radius = rng.uniform(112, 134)
        rotation = rng.uniform(0, 2 * np.pi)
        gain = rng.uniform(0.78, 1.18)
        light_angle = rng.uniform(0, 2 * np.pi)
        light = rng.uniform(0.0, 0.18)
        n_vanes = int(rng.integers(6, 10))
        curve = rng.uniform(1.5, 3.0)

        dx, dy = self.xx - cx, self.yy - cy
        pose = _Pose(cx, cy, radius, np.hypot(dx, dy) / radius, np.arctan2(dy, dx))
        # Background: light, with a smooth stain texture and grain.
        bg_level = rng.uniform(0.66, 0.80)
        background = (
            bg_level
            + self._noise(rng, 6, 0.035)
            + 0.018 * rng.standard_normal((s, s), dtype=np.float32)
        )
        value = self._casting(rng, pose, pose.theta_abs + rotation, n_vanes, curve)
        # Directional light across the casting.
        value *= 1.0 + light * np.minimum(pose.r, 1.0) * np.cos(pose.theta_abs - light_angle)

        inside = 1.0 - _step(pose.r, 1.0, 0.01)
        mask_extra = np.zeros((s, s), np.float32)  # added casting material (burrs)
        mask_missing = np.zeros((s, s), np.float32)  # removed material (chips)
        dark = np.zeros((s, s), np.float32)  # darkening by holes, cracks, shrinkage
        if defective:
            n_defects = 1 + int(rng.random() < 0.35) + int(rng.random() < 0.12)
            kinds = rng.choice(5, size=n_defects, replace=True, p=[0.2, 0.2, 0.22, 0.18, 0.2])
            for kind in kinds:
                angle = rng.uniform(-np.pi, np.pi)
                d_theta = np.angle(np.exp(1j * (pose.theta_abs - angle)))
                if kind == 0:  # burr past the rim
                    mask_extra = np.maximum(mask_extra, self._burr(rng, pose.r, d_theta))
                elif kind == 1:  # chipped rim
                    mask_missing = np.maximum(mask_missing, self._chip(rng, pose.r, d_theta))
                else:
                    self._DARK_DEFECTS[kind](self, rng, pose, dark)

        # Benign marks in both classes: dust specks on the background.
        for _ in range(int(rng.integers(0, 4))):
            px, py = rng.uniform(0, s, 2)
            dist = np.hypot(self.xx - px, self.yy - py)
            background -= rng.uniform(0.05, 0.2) * np.clip(rng.uniform(0.8, 2.0) - dist, 0, 1)

        material = np.clip(inside + mask_extra - mask_missing, 0.0, 1.0)
        # Past the rim the profile stays rim-coloured, so burrs look like cast material.
        image = background * (1 - material) + (value - dark) * material
        image *= gain
        grey = Image.fromarray(np.clip(image * 255.0, 0, 255).astype(np.uint8), "L")
        return np.asarray(grey.filter(ImageFilter.GaussianBlur(0.6)))

    def _casting(
        self, rng: np.random.Generator, pose: _Pose, theta: np.ndarray, n_vanes: int, curve: float
    ) -> np.ndarray:
        """Brightness of the casting: the radial profile with soft edges, vanes in the eye,
        machining rings and grain."""
        r = pose.r
        bore, hub_v, eye, vane_v = rng.uniform(0.08, 0.16), rng.uniform(0.50, 0.62), 0.22, 0.40
        ring_v, shroud_v, rim_v = rng.uniform(0.46, 0.56), rng.uniform(0.70, 0.80), 0.52
        eye_out = rng.uniform(0.48, 0.54)
        vanes = np.sin(n_vanes * (theta + curve * r)) > 0.55
        eye_layer = np.where(vanes, vane_v, eye) + 0.05 * (r - 0.25)
        value = np.full((self.size, self.size), bore, np.float32)
        value = value + (hub_v - value) * _step(r, 0.11)
        value = value + (eye_layer - value) * _step(r, 0.24)
        value = value + (ring_v - value) * _step(r, eye_out)
        value = value + (0.82 - value) * _step(r, eye_out + 0.095, 0.008)  # bright step edge
        value = value + (shroud_v - value) * _step(r, eye_out + 0.11)
        value = value + (rim_v - value) * _step(r, 0.93)
        # Machining rings on the shroud and grain over the whole casting.
        value += 0.015 * np.sin(r * pose.radius * rng.uniform(0.7, 1.3))
        casting_grain = self._noise(rng, 40, 0.03) + 0.02 * rng.standard_normal(
            (self.size, self.size), dtype=np.float32
        )
        return value + casting_grain

    def _burr(self, rng: np.random.Generator, r: np.ndarray, d_theta: np.ndarray) -> np.ndarray:
        width = rng.uniform(0.03, 0.10)
        height = DEFECT_STRENGTH * rng.uniform(0.02, 0.07)
        rough = 1.0 + 0.35 * self._noise(rng, 24, 1.0)
        shape = np.clip(1 - np.abs(d_theta) / width, 0, 1) ** 0.6 * rough
        return (r < 1.0 + height * shape) & (r > 0.9)

    def _chip(self, rng: np.random.Generator, r: np.ndarray, d_theta: np.ndarray) -> np.ndarray:
        width = rng.uniform(0.03, 0.09)
        depth = DEFECT_STRENGTH * rng.uniform(0.025, 0.07)
        shape = np.clip(1 - (d_theta / width) ** 2, 0, 1)
        return r > 1.0 - depth * shape

    def _pinholes(self, rng: np.random.Generator, pose: _Pose, dark: np.ndarray) -> None:
        for _ in range(int(rng.integers(1, 5))):
            px, py = pose.point(rng.uniform(0.3, 0.9), rng.uniform(-np.pi, np.pi))
            hole = rng.uniform(1.3, 3.2)
            dist = np.hypot(self.xx - px, self.yy - py)
            dark += DEFECT_STRENGTH * rng.uniform(0.25, 0.45) * np.clip(hole + 0.5 - dist, 0, 1)

    def _shrinkage(self, rng: np.random.Generator, pose: _Pose, dark: np.ndarray) -> None:
        """A rough, dark, irregular patch."""
        px, py = pose.point(rng.uniform(0.62, 0.9), rng.uniform(-np.pi, np.pi))
        size = rng.uniform(5, 13)
        dist = np.hypot((self.xx - px) / rng.uniform(0.6, 1.4), self.yy - py) / size
        blob = (1 - dist) + 0.5 * self._noise(rng, 30, 1.0)
        patch = np.clip(blob * 3, 0, 1)
        strength = DEFECT_STRENGTH * rng.uniform(0.10, 0.22)
        dark += strength * patch * (1 + 0.5 * rng.random((self.size, self.size), dtype=np.float32))

    def _crack(self, rng: np.random.Generator, pose: _Pose, dark: np.ndarray) -> None:
        """A thin jagged line, often from the rim inwards."""
        layer = Image.new("L", (self.size, self.size), 0)
        draw = ImageDraw.Draw(layer)
        rr = rng.uniform(0.55, 1.0)
        a = rng.uniform(-np.pi, np.pi)
        x, y = pose.point(rr, a)
        heading = a + np.pi + rng.normal(0, 0.6)
        points = [(x, y)]
        for _ in range(int(rng.integers(4, 10))):
            heading += rng.normal(0, 0.5)
            length = rng.uniform(3, 8)
            x, y = x + length * np.cos(heading), y + length * np.sin(heading)
            points.append((x, y))
        draw.line(points, fill=255, width=int(rng.integers(1, 3)))
        line = np.asarray(layer.filter(ImageFilter.GaussianBlur(0.5)), np.float32)
        dark += DEFECT_STRENGTH * rng.uniform(0.22, 0.4) * line / 255.0

    # defect kind -> what adds its darkening (kinds 0 and 1 change the outline instead)
    _DARK_DEFECTS = {2: _pinholes, 3: _shrinkage, 4: _crack}
