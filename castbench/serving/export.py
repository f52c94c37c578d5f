"""Export a built Keras model through Keras 3's own exporters (``model.export``), which call
the runtimes' converters: tf2onnx for ONNX, TensorFlow's LiteRT converter, and
``openvino.convert_model``. Each artifact gets a JSON record beside it: its files, size on disk,
export time and the versions of everything that produced it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras

from castbench.errors import UsageError
from castbench.files import atomic_write_text
from castbench.serving.registry import format_packages, installed_version, require_format

clock = time.perf_counter


class ExportError(UsageError):
    """A backbone that a format's exporter cannot convert; the message says why, in one line."""


@dataclass(frozen=True)
class Artifact:
    """One exported model on disk."""

    format: str
    path: Path  # what a runtime loads
    files: tuple[Path, ...]  # everything the export wrote (OpenVINO: .xml and .bin)
    size_mb: float
    export_s: float
    input_size: int
    versions: dict[str, str | None]

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(path=self.path.name, files=[f.name for f in self.files])
        return record


def artifact_stem(model: keras.Model, input_size: int) -> str:
    return f"{model.name}_{input_size}px"


def export_versions(format_name: str) -> dict[str, str | None]:
    packages = dict.fromkeys(("keras", keras.backend.backend(), *format_packages(format_name)))
    return {package: installed_version(package) for package in packages}


def record_path(artifact_path: Path, format_name: str) -> Path:
    return artifact_path.with_name(f"{artifact_path.stem}.{format_name}.json")


def export_model(model: keras.Model, format_name: str, out_dir: Path) -> Artifact:
    """Export ``model`` (float32, square image input) to ``format_name`` in ``out_dir``."""
    record = require_format(format_name)
    input_size = int(model.input_shape[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{artifact_stem(model, input_size)}{record.suffix}"
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # it logs every rewrite at INFO
    # Given, not inferred: Keras's ONNX exporter refuses a model that was never called.
    signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32",
                                 name=model.inputs[0].name)]  # fmt: skip
    start = clock()
    try:
        with _openvino_telemetry_declined():
            model.export(str(path), format=format_name, verbose=False, input_signature=signature)
    except Exception as exc:  # the converter's own reason, in one line
        raise ExportError(
            f"{model.name} cannot be exported to {format_name}: {_first_line(exc)}"
        ) from None
    elapsed = clock() - start
    if format_name == "onnx":
        check_onnx_inputs(path, model.name)
    files = (path, *(path.with_suffix(suffix) for suffix in record.companions))
    artifact = Artifact(
        format=format_name,
        path=path,
        files=files,
        size_mb=sum(f.stat().st_size for f in files) / 2**20,
        export_s=elapsed,
        input_size=input_size,
        versions=export_versions(format_name),
    )
    text = json.dumps({"model": model.name, **artifact.as_dict()}, indent=2) + "\n"
    atomic_write_text(record_path(path, format_name), text)
    return artifact


@contextlib.contextmanager
def _openvino_telemetry_declined() -> Iterator[None]:
    """OpenVINO's converter reports usage to a web service unless the user opted out or it
    runs in CI (``CI=true``), which it then declines. castbench sends nothing anywhere, and from
    a multi-threaded TensorFlow process the forked sender deadlocks and stays behind."""
    previous = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["CI"]
        else:
            os.environ["CI"] = previous


def check_onnx_inputs(path: Path, model_name: str) -> None:
    """Refuse an ONNX file that needs more than the image: tf2onnx can leave a layer's constants
    (EfficientNet's Normalization mean and variance) as graph inputs no runtime can feed."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {tensor.name for tensor in graph.initializer}
    extra = [tensor.name for tensor in graph.input if tensor.name not in constants][1:]
    if extra:
        raise ExportError(
            f"{model_name} cannot be exported to onnx: the converter left {len(extra)} "
            f"constant(s) as inputs beside the image ({', '.join(extra)[:200]})"
        )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
