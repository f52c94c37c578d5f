"""``castbench export``: one backbone + head exported for serving runtimes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from castbench.commands.options import JSON_TABLE, add_command, option
from castbench.commands.output import format_table, print_json
from castbench.commands.registry import HEAD_OPTION, WEIGHTS_OPTION
from castbench.errors import UsageError
from castbench.serving.registry import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "export",
        "export a backbone + head to ONNX, LiteRT or OpenVINO",
        "Build one backbone with its head and export it through Keras's own "
        "exporters (model.export: tf2onnx for ONNX, TensorFlow's LiteRT converter, "
        "openvino.convert_model), float32, batch size left open, with two outputs: the "
        "probability and the head's logit. Each artifact gets a JSON record beside it: what it "
        "was exported from (model, size, weights and a digest of their values, versions), "
        "files, size on disk, export time; castbench timing --artifacts OUT reuses it. Needs "
        'the serve extra: pip install "castbench[serve]".',
        [
            option("name", help="backbone name, case-insensitive"),
            option(
                "--size", type=int, default=None, help="input size in pixels (default: native size)"
            ),
            option(
                "--format",
                choices=(*FORMATS, "all"),
                default="all",
                help="export format (default: all)",
            ),
            HEAD_OPTION,
            WEIGHTS_OPTION,
            option("--out", type=Path, required=True, help="folder for the artifacts"),
            JSON_TABLE,
        ],
        func=run_export,
    )


def run_export(args: argparse.Namespace) -> int:
    from castbench.serving.registry import require_format
    from castbench.spec import ModelSpec

    formats = list(FORMATS) if args.format == "all" else [args.format]
    for name in formats:  # a missing converter stops the command before the model is built
        require_format(name)
    spec = ModelSpec(args.name, args.size, head=args.head, weights=args.weights)
    spec.validate()

    from castbench.models import BUILD_SEED, build_model
    from castbench.serving.export import ExportError, export_model

    model = build_model(spec, seed=BUILD_SEED)  # the weights castbench timing builds
    artifacts, failures = [], []
    for name in formats:
        try:
            artifacts.append(export_model(model, name, args.out, args.weights))
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
