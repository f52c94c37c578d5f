"""A picture of what an augmentation preset does: one image and a grid of its augmented draws."""

from __future__ import annotations

from pathlib import Path

from castbench.augment import get_preset, preset_names


def render_preview(
    image_path: str | Path,
    preset: str,
    out: str | Path,
    size: int = 300,
    samples: int = 8,
    seed: int = 0,
) -> Path:
    """Write a PNG grid: the source image, then ``samples`` draws of ``preset``; with
    ``preset="all"``, the source image once under every preset (the seed's comparison)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from castbench.augment.apply import augment_batch
    from castbench.data.loader import decode_rgb

    source = decode_rgb(image_path, size)
    if preset == "all":
        chosen = [get_preset(n) for n in preset_names()]
        panels = [("source", source)]
        for p in chosen:
            panels.append((p.name, augment_batch(source[None], p, seed=seed)[0]))
    else:
        p = get_preset(preset)
        stacked = np.repeat(source[None], samples, axis=0)
        augmented = augment_batch(stacked, p, seed=seed)
        panels = [("source", source)] + [(f"{p.name} #{i + 1}", a) for i, a in enumerate(augmented)]
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, (title, pixels) in zip(np.atleast_1d(axes).ravel(), panels, strict=False):
        ax.imshow(np.clip(np.asarray(pixels), 0, 255).astype(np.uint8))
        ax.set_title(title, fontsize=10)
    figure.suptitle(f"augmentation: {preset}  ({Path(image_path).name})", fontsize=11)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return out
