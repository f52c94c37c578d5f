"""Export a built Keras model through Keras 3's own exporters (``model.export``), which call
the runtimes' converters: tf2onnx for ONNX, TensorFlow's LiteRT converter, and
``openvino.convert_model``. The artifact serves two named outputs, ``probability`` and the head's
``logit`` (:mod:`castbench.serving.outputs`). Each artifact gets a JSON record beside it: what it
was exported from (:class:`~castbench.serving.artifacts.Identity`), its files, size on disk and
export time; :func:`load_artifact` reads a matching one back instead of exporting again.
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
from castbench.serving.artifacts import (
    Identity,
    mismatch,
    read_record,
    record_path,
    weights_digest,
    weights_label,
)
from castbench.serving.constants import normalization_constants_inlined
from castbench.serving.outputs import with_logit
from castbench.serving.registry import FORMATS, require_format

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
    reused: bool = False  # read back from an earlier export's folder; export_s is then 0

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(path=self.path.name, files=[f.name for f in self.files])
        del record["reused"]  # a property of one use, not of the artifact
        return record


def identity_of(model: keras.Model, format_name: str, weights: str) -> Identity:
    """What an export of ``model`` (built from ``--weights weights``) is made from."""
    return Identity(model.name, int(model.input_shape[1]), format_name, weights_label(weights),
                    weights_digest(model))  # fmt: skip


def load_artifact(identity: Identity, folder: Path) -> Artifact | None:
    """The artifact ``folder`` holds for ``identity``; None unless its record matches."""
    if mismatch(identity, folder) is not None:
        return None
    path = identity.path(folder)
    record = read_record(record_path(path, identity.format)) or {}
    files = tuple(folder / name for name in record["files"])
    return Artifact(identity.format, path, files, size_mb=record["size_mb"], export_s=0.0,
                    input_size=identity.input_size, versions=record["versions"],
                    reused=True)  # fmt: skip


def export_model(model: keras.Model, format_name: str, out_dir: Path, weights: str = "none"
                 ) -> Artifact:  # fmt: skip
    """Export ``model`` (float32, square image input; built from ``--weights weights``) to
    ``format_name`` in ``out_dir``, with its probability and logit outputs."""
    require_format(format_name)
    identity = identity_of(model, format_name, weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = identity.path(out_dir)
    start = clock()
    try:
        export_served(model, format_name, path)
    except Exception as exc:  # the converter's own reason, in one line
        raise ExportError(
            f"{model.name} cannot be exported to {format_name}: {_first_line(exc)}"
        ) from None
    elapsed = clock() - start
    if format_name == "onnx":
        check_onnx_inputs(path, model.name)
    return recorded(identity, path, elapsed)


def export_served(model: keras.Model, format_name: str, path: Path, **converter: Any) -> None:
    """Write ``model`` with its probability and logit outputs to ``path`` through Keras's
    exporter for ``format_name``; ``converter``: settings Keras hands to the format's converter
    (LiteRT: TensorFlow's converter attributes, such as ``optimizations``)."""
    served = with_logit(model)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # it logs every rewrite at INFO
    # Given, not inferred: Keras's ONNX exporter refuses a model that was never called.
    signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32",
                                 name=model.inputs[0].name)]  # fmt: skip
    with openvino_telemetry_declined(), normalization_constants_inlined(model):
        served.export(str(path), format=format_name, verbose=False, input_signature=signature,
                      **converter)  # fmt: skip


def recorded(identity: Identity, path: Path, elapsed: float) -> Artifact:
    """The artifact just written at ``path`` in ``elapsed`` seconds, its record beside it."""
    files = (path, *(path.with_suffix(suffix) for suffix in FORMATS[identity.format].companions))
    artifact = Artifact(
        format=identity.format,
        path=path,
        files=files,
        size_mb=sum(f.stat().st_size for f in files) / 2**20,
        export_s=elapsed,
        input_size=identity.input_size,
        versions=identity.versions,
    )
    text = json.dumps({**identity.as_record(), **artifact.as_dict()}, indent=2) + "\n"
    atomic_write_text(record_path(path, identity.format), text)
    return artifact


@contextlib.contextmanager
def openvino_telemetry_declined() -> Iterator[None]:
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
