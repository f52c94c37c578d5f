"""``castbench export``: one backbone + head exported for serving runtimes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from castbench.commands.output import format_table, print_json
from castbench.errors import UsageError
from castbench.serving.registry import FORMATS
from castbench.spec import HEADS, WEIGHT_CHOICES_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export",
        help="export a backbone + head to ONNX, LiteRT or OpenVINO",
        description="Build one backbone with its head and export it through Keras's own "
        "exporters (model.export: tf2onnx for ONNX, TensorFlow's LiteRT converter, "
        "openvino.convert_model), float32, batch size left open. Each artifact gets a JSON "
        "record beside it: files, size on disk, export time, exporter versions. Needs the "
        'serve extra: pip install "castbench[serve]".',
    )
    export.add_argument("name", help="backbone name, case-insensitive")
    export.add_argument(
        "--size", type=int, default=None, help="input size in pixels (default: native size)"
    )
    export.add_argument(
        "--format", choices=(*FORMATS, "all"), default="all", help="export format (default: all)"
    )
    export.add_argument("--head", choices=HEADS, default="gap")
    export.add_argument("--weights", default="none", help=WEIGHT_CHOICES_HELP)
    export.add_argument("--out", type=Path, required=True, help="folder for the artifacts")
    export.add_argument("--json", action="store_true", help="print JSON instead of a table")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from castbench.serving.registry import require_format
    from castbench.spec import ModelSpec

    formats = list(FORMATS) if args.format == "all" else [args.format]
    for name in formats:  # a missing converter stops the command before the model is built
        require_format(name)
    spec = ModelSpec(args.name, args.size, head=args.head, weights=args.weights)
    spec.validate()

    from castbench.models import build_model
    from castbench.serving.export import ExportError, export_model

    model = build_model(spec)
    artifacts, failures = [], []
    for name in formats:
        try:
            artifacts.append(export_model(model, name, args.out))
        except ExportError as exc:
            failures.append(str(exc))
    if args.json:
        print_json([a.as_dict() | {"path": str(a.path)} for a in artifacts])
    elif artifacts:
        rows = [[a.format, str(a.path), a.size_mb, a.export_s] for a in artifacts]
        print(format_table(["format", "artifact", "MB", "export s"], rows))
    for failure in failures:  # one line each, after what did export; bad input: exit 2
        print(f"castbench: error: {failure}", file=sys.stderr)
    return UsageError.exit_code if failures else 0
