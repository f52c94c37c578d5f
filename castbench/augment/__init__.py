"""The seed study's augmentation presets and their ablations, as data.

``default`` is the seed's ``preprocess_train``: ``tf.image.random_hue(max_delta=0.5)`` then
``tf.image.random_contrast(0.75, 1.5)``, seed 404. ``additional`` adds the seed's
ImageDataGenerator: width/height shift 0.1, rotation 45°, brightness [0.9, 1.1]
(multiplicative, as ImageDataGenerator's PIL enhance is), shear 5°, zoom 0.1 (x and y drawn
independently), fill_mode constant with 0, and horizontal and vertical flips as two independent
coins. Each ``no-*`` preset drops exactly one of those from ``additional``; ``no-fill-mode``
falls back to ImageDataGenerator's default fill, ``nearest``. The seed's Part 5 used
``no-rotation``.

As in ImageDataGenerator, the geometric transform comes first (one combined affine transform
per image, applied in the input pipeline, never inside the model), then the flips, then
brightness, then the preprocessing function (hue, contrast). The numpy code that applies a
preset lives in :mod:`castbench.augment.apply`, which the input pipeline and the previews use;
this module imports neither numpy nor a framework so the CLI can check names fast.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from castbench.errors import UsageError

SEED_AUGMENT_SEED = 404  # the seed study's op seed for random_hue / random_contrast


@dataclass(frozen=True)
class AugmentPreset:
    """Parameters of one augmentation; zero / None / False switches a transform off."""

    name: str
    description: str
    hue_delta: float = 0.0  # random_hue max_delta
    contrast: tuple[float, float] | None = None  # random_contrast (lower, upper)
    width_shift: float = 0.0  # fraction of the width
    height_shift: float = 0.0  # fraction of the height
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    brightness: tuple[float, float] | None = None  # multiplicative factor range
    shear: float = 0.0  # degrees, uniform in [-shear, shear]
    zoom: float = 0.0  # zoom factors uniform in [1 - zoom, 1 + zoom], x and y independent
    fill_mode: str = "constant"  # constant | nearest (ImageDataGenerator's default)
    fill_value: float = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    seed: int = SEED_AUGMENT_SEED

    @property
    def geometric(self) -> bool:
        """Whether the preset moves pixels (needs the affine transform)."""
        return bool(
            self.width_shift
            or self.height_shift
            or self.rotation
            or self.shear
            or self.zoom
            or self.horizontal_flip
            or self.vertical_flip
        )

    @property
    def resamples(self) -> bool:
        """Whether the preset moves pixels by fractions (needs the affine resampling); flips
        alone move whole pixels."""
        return bool(
            self.width_shift or self.height_shift or self.rotation or self.shear or self.zoom
        )

    @property
    def identity(self) -> bool:
        return not (self.geometric or self.hue_delta or self.contrast or self.brightness)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


NONE = AugmentPreset("none", "no augmentation")
DEFAULT = AugmentPreset(
    "default",
    "the seed's default: random_hue(0.5) + random_contrast(0.75, 1.5), seed 404",
    hue_delta=0.5,
    contrast=(0.75, 1.5),
)
ADDITIONAL = replace(
    DEFAULT,
    name="additional",
    description="default + shift 0.1, rotation 45, brightness 0.9-1.1 (multiplicative), "
    "shear 5, zoom 0.1, constant fill 0, independent horizontal and vertical flips",
    width_shift=0.1,
    height_shift=0.1,
    rotation=45.0,
    brightness=(0.9, 1.1),
    shear=5.0,
    zoom=0.1,
    fill_mode="constant",
    fill_value=0.0,
    horizontal_flip=True,
    vertical_flip=True,
)

# name -> (what it drops, the fields of ``additional`` it resets)
_ABLATIONS = {
    "no-hue-contrast": ("random_hue and random_contrast", {"hue_delta": 0.0, "contrast": None}),
    "no-shift": ("width and height shift", {"width_shift": 0.0, "height_shift": 0.0}),
    "no-rotation": ("rotation (the seed's Part 5 setting)", {"rotation": 0.0}),
    "no-brightness": ("brightness", {"brightness": None}),
    "no-shear": ("shear", {"shear": 0.0}),
    "no-zoom": ("zoom", {"zoom": 0.0}),
    "no-fill-mode": (
        "constant fill (ImageDataGenerator's default 'nearest')",
        {"fill_mode": "nearest"},
    ),
    "no-flip": (
        "horizontal and vertical flips",
        {"horizontal_flip": False, "vertical_flip": False},
    ),
}

# Not the seed's: mirror images alone. A casting photographed from above is a casting in any
# mirror image, and flips move no pixel off the frame or between pixels, so small defects (a
# pinhole is one or two pixels at 96-128 px) survive them; the scratch recipe trains with it.
FLIP = AugmentPreset(
    "flip",
    "independent horizontal and vertical flips only (no resampling)",
    horizontal_flip=True,
    vertical_flip=True,
)

PRESETS: dict[str, AugmentPreset] = {p.name: p for p in (NONE, DEFAULT, ADDITIONAL)}
for _name, (_what, _changes) in _ABLATIONS.items():
    PRESETS[_name] = replace(
        ADDITIONAL, name=_name, description=f"additional without {_what}", **_changes
    )
PRESETS[FLIP.name] = FLIP  # after the seed's eleven, which the augmentation grid lists in order


def ablation_fields(name: str) -> tuple[str, ...]:
    """The fields an ablation resets relative to ``additional`` (empty for other presets)."""
    return tuple(_ABLATIONS[name][1]) if name in _ABLATIONS else ()


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str | AugmentPreset) -> AugmentPreset:
    """Look a preset up by name (case-insensitive); UsageError lists the valid names."""
    if isinstance(name, AugmentPreset):
        return name
    key = str(name).strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise UsageError(
            f"unknown augmentation preset {name!r}; choose from: {', '.join(preset_names())}"
        )
    return PRESETS[key]
