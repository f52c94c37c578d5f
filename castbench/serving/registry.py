"""The export formats and serving runtimes castbench knows, as data, and the check that what
they need is installed. Imports no runtime: the CLI checks names and extras before anything slow.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from castbench.errors import UsageError

EXTRA_HINT = 'pip install "castbench[serve]"'
# What every artifact serves, by name: the defect probability and the head's logit before the
# sigmoid, which the correctness gate compares (castbench.serving.outputs builds them).
PROBABILITY = "probability"
LOGIT = "logit"
OUTPUTS = (PROBABILITY, LOGIT)


class MissingExtra(UsageError):
    """A runtime or exporter package of the ``serve`` extra is not installed."""


@dataclass(frozen=True)
class Format:
    """One of Keras 3's ``model.export`` formats."""

    name: str
    suffix: str  # what Keras's exporter requires the artifact path to end with
    packages: tuple[str, ...]  # distributions of the converters Keras calls (beyond TensorFlow)
    companions: tuple[str, ...] = ()  # suffixes of files the exporter writes beside the artifact


@dataclass(frozen=True)
class Runtime:
    """A serving runtime and the export format it loads."""

    name: str
    format: str
    package: str  # its distribution on PyPI


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", ("tf2onnx", "onnx")),
    "litert": Format("litert", ".tflite", ()),  # TensorFlow's own LiteRT (TFLite) converter
    "openvino": Format("openvino", ".xml", ("openvino",), companions=(".bin",)),
}
# The packages that quantize each format's artifacts (castbench.serving.quantize)
QUANTIZERS: dict[str, tuple[str, ...]] = {"onnx": ("onnxruntime",), "openvino": ("nncf",),
                                          "litert": ()}  # fmt: skip
SERVING_RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnx", "onnxruntime"),
    "litert": Runtime("litert", "litert", "ai-edge-litert"),
    "openvino": Runtime("openvino", "openvino", "openvino"),
}
# import names where they differ from the distribution's
_MODULES = {"ai-edge-litert": "ai_edge_litert"}


def serve_packages() -> list[str]:
    """The exporters, runtimes and quantizers of the serve extra, as PyPI names."""
    exporters = [p for record in FORMATS.values() for p in record.packages]
    quantizers = [p for packages in QUANTIZERS.values() for p in packages]
    runtimes = [r.package for r in SERVING_RUNTIMES.values()]
    return list(dict.fromkeys([*exporters, *runtimes, *quantizers]))


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _require(packages: tuple[str, ...], what: str) -> None:
    for package in packages:
        module = _MODULES.get(package, package)
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(f"{what} needs the {package} package: {EXTRA_HINT}")


def require_format(name: str) -> Format:
    """The format ``name``, once its converters are known to be installed."""
    if name not in FORMATS:
        raise UsageError(f"unknown export format {name!r}; choose from: {', '.join(FORMATS)}")
    record = FORMATS[name]
    _require(record.packages, f"export to {name}")
    return record


def require_runtime(name: str, precision: str = "float32") -> Runtime:
    """The runtime ``name``, once it and its format's converters (and, for a precision other
    than float32, its quantizer) are known to be installed."""
    if name not in SERVING_RUNTIMES:
        choices = ", ".join(SERVING_RUNTIMES)
        raise UsageError(f"unknown serving runtime {name!r}; choose from: {choices}")
    record = SERVING_RUNTIMES[name]
    _require((record.package,), f"the {name} runtime")
    require_format(record.format)
    if precision != "float32":
        _require(QUANTIZERS[record.format], f"{precision} in {name}")
    return record
