"""``castbench data synth|check`` and ``castbench augment preview``: the casting data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from castbench.commands.options import JSON_TEXT, add_command, add_command_group, option
from castbench.commands.output import format_table, print_json
from castbench.errors import UsageError

# `data synth` and `augment preview` draw random images from the same kind of seed.
SEED_OPTION = option("--seed", type=int, default=0, help="random seed (default 0)")


def register(subparsers: argparse._SubParsersAction) -> None:
    data_sub = add_command_group(
        subparsers,
        "data",
        "generate or check casting data sets",
        "Generate the offline synthetic stand-in for the Kaggle casting-defect set, "
        "or check a data set in the Kaggle layout ROOT/{train,test}/{def_front,ok_front}/.",
        dest="data_command",
        metavar="SUBCOMMAND",
    )
    add_command(
        data_sub,
        "synth",
        "write a synthetic casting set in the Kaggle layout",
        "Write 300x300 grey impeller castings (RGB JPEG) in the Kaggle layout. "
        "small: the seed's split at 1/10 scale (train 376 def + 288 ok, test 45 def + 26 ok); "
        "full: the seed's counts (train 3,758 + 2,875, test 453 + 262). Same seed, same bytes.",
        [
            option("out", help="output folder (must not hold a data set yet)"),
            option("--train", type=int, default=None, help="training images (default: scale)"),
            option("--test", type=int, default=None, help="test images (default: scale)"),
            SEED_OPTION,
            option("--scale", choices=("small", "full"), default="small"),
        ],
        func=run_synth,
        needs_backend=False,
    )
    add_command(
        data_sub,
        "check",
        "count images per split and class; list skipped files",
        "Scan a casting data set: counts per split and class, image sizes and "
        "modes seen, and the files skipped (junk, unreadable or truncated) with the reason.",
        [option("path", help="data root (holding train/ and test/, or casting_data/)"), JSON_TEXT],
        func=run_check,
        needs_backend=False,
    )

    augment_sub = add_command_group(
        subparsers,
        "augment",
        "preview the seed's augmentation presets",
        "Augmentation presets of the seed study, as data.",
        dest="augment_command",
        metavar="SUBCOMMAND",
    )
    add_command(
        augment_sub,
        "preview",
        "write a PNG grid of augmented images",
        "Draw one source image under a preset (a grid of random draws) or, with "
        "--preset all, once under every preset (the seed's comparison picture).",
        [
            option(
                "--data", default=None, help="data root (default: the cached small synthetic set)"
            ),
            option("--preset", default="all", help="preset name, or all (default)"),
            option("--out", default=None, help="PNG file (default: augment-PRESET.png)"),
            option("--image", default=None, help="source image (default: first train defect)"),
            option("--size", type=int, default=300, help="image size in pixels (300)"),
            SEED_OPTION,
        ],
        func=run_preview,
    )


def run_synth(args: argparse.Namespace) -> int:
    from castbench.data.synth import counts_for, generate

    counts = counts_for(args.scale, args.train, args.test)
    started = time.perf_counter()
    out = generate(args.out, args.train, args.test, seed=args.seed, scale=args.scale)
    elapsed = time.perf_counter() - started
    summary = ", ".join(
        f"{split} {c.defect} def + {c.ok} ok"
        + (f" ({c.new_defects} new__)" if c.new_defects else "")
        for split, c in counts.items()
    )
    print(f"wrote {out}: {summary} in {elapsed:.1f} s")
    return 0


def check_report(path: str | Path) -> dict:
    import warnings

    from castbench.data.loader import load_casting

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists every skipped file itself
        data = load_casting(path)
    return {
        "root": str(data.root),
        "counts": data.counts(),
        "total": len(data.train) + len(data.test),
        "sizes": {f"{w}x{h}": n for (w, h), n in sorted(data.sizes.items())},
        "modes": dict(sorted(data.modes.items())),
        "skipped": [{"file": str(p), "reason": why} for p, why in data.skipped],
    }


def run_check(args: argparse.Namespace) -> int:
    report = check_report(args.path)
    if args.json:
        print_json(report)
        return 0
    print(f"casting data at {report['root']}")
    rows = [
        [split, c["def_front"], c["ok_front"], c["def_front"] + c["ok_front"]]
        for split, c in report["counts"].items()
    ]
    print(format_table(["split", "def_front", "ok_front", "total"], rows))
    print("sizes: " + ", ".join(f"{k} ({n})" for k, n in report["sizes"].items()))
    print("modes: " + ", ".join(f"{k} ({n})" for k, n in report["modes"].items()))
    print(f"skipped: {len(report['skipped'])}")
    for item in report["skipped"]:
        print(f"  {item['file']}: {item['reason']}")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from castbench.augment import get_preset
    from castbench.data.loader import load_casting
    from castbench.data.preview import render_preview
    from castbench.data.synth import default_synthetic_set

    if args.preset != "all":
        get_preset(args.preset)  # fail fast on a bad name
    if args.size < 8:
        raise UsageError(f"--size must be at least 8, got {args.size}")
    if args.image:
        image = Path(args.image)
        if not image.is_file():
            raise UsageError(f"image {image} does not exist")
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_casting(args.data) if args.data else load_casting(default_synthetic_set())
        image = next(s.path for s in data.train if s.label == 1)
    out = Path(args.out or f"augment-{args.preset}.png")
    render_preview(image, args.preset, out, size=args.size, seed=args.seed)
    print(f"wrote {out}")
    return 0
