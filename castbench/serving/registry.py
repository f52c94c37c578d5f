"""The export formats and serving runtimes castbench knows, as data, and the check that what
they need is installed. Imports no runtime: the CLI checks names and extras before anything slow.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from castbench.errors import UsageError
from castbench.runtime import keras_backend_name

EXTRA_HINT = 'pip install "castbench[serve]"'
# What every artifact serves, by name: the defect probability and the head's logit before the
# sigmoid, which the correctness gate compares (castbench.serving.outputs builds them).
PROBABILITY = "probability"
LOGIT = "logit"
OUTPUTS = (PROBABILITY, LOGIT)
# packages outside the serve extra, and how to get them
_HINTS = {"tensorflow": "pip install tensorflow", "jax2onnx": "pip install jax2onnx",
          "litert-torch": "pip install litert-torch"}  # fmt: skip


class MissingExtra(UsageError):
    """A runtime or exporter package is not installed, or the exporter does not run under this
    Keras backend."""


@dataclass(frozen=True)
class Format:
    """One of Keras 3's ``model.export`` formats."""

    name: str
    suffix: str  # what Keras's exporter requires the artifact path to end with
    # Keras backend -> distributions of the converters Keras calls under it; a backend missing
    # here has no exporter for the format
    packages: dict[str, tuple[str, ...]]
    companions: tuple[str, ...] = ()  # suffixes of files the exporter writes beside the artifact


@dataclass(frozen=True)
class Runtime:
    """A serving runtime and the export format it loads."""

    name: str
    format: str
    package: str  # its distribution on PyPI


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", {"tensorflow": ("tensorflow", "tf2onnx", "onnx"),
                                     "jax": ("jax2onnx", "onnx"), "torch": ("onnx",)}),
    # TensorFlow's own LiteRT (TFLite) converter, or litert-torch's
    "litert": Format("litert", ".tflite", {"tensorflow": ("tensorflow",),
                                           "torch": ("litert-torch",)}),
    # JAX models reach OpenVINO through jax2tf, which is TensorFlow's
    "openvino": Format("openvino", ".xml", {"tensorflow": ("tensorflow", "openvino"),
                                            "jax": ("tensorflow", "openvino"),
                                            "torch": ("openvino",)}, companions=(".bin",)),
}  # fmt: skip
# A serving precision other than float32 (castbench.timing.config.SERVING_PRECISIONS) is an
# artifact of its own, made by these packages (castbench.serving.quantize): from the float32
# export (ONNX Runtime's quantizer, NNCF), or from the Keras model (TensorFlow's LiteRT
# converter, under the tensorflow backend only). A precision of a format missing here runs the
# float32 artifact: OpenVINO compiles it at bfloat16 or float16 (castbench.serving.sessions).
QUANTIZERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("onnx", "int8"): ("onnxruntime",),
    ("openvino", "int8"): ("nncf",),
    ("litert", "int8"): ("tensorflow",),
    ("litert", "float16"): ("tensorflow",),
}
QUANTIZER_BACKENDS = {"litert": ("tensorflow",)}  # formats quantized under some backends only
SERVING_RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnx", "onnxruntime"),
    "litert": Runtime("litert", "litert", "ai-edge-litert"),
    "openvino": Runtime("openvino", "openvino", "openvino"),
}
# import names where they differ from the distribution's
_MODULES = {"ai-edge-litert": "ai_edge_litert", "litert-torch": "litert_torch"}


def serve_packages() -> list[str]:
    """The exporters, runtimes and quantizers of the serve extra, as PyPI names."""
    exporters = [p for record in FORMATS.values() for p in record.packages.get("tensorflow", ())
                 if p not in _HINTS]  # fmt: skip
    quantizers = [p for packages in QUANTIZERS.values() for p in packages if p not in _HINTS]
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
            hint = _HINTS.get(package, EXTRA_HINT)
            raise MissingExtra(f"{what} needs the {package} package: {hint}")


def format_packages(name: str, backend: str | None = None) -> tuple[str, ...]:
    """What exporting to ``name`` needs under ``backend`` (default: the current one)."""
    backend = backend or keras_backend_name()
    record = FORMATS[name]
    if backend not in record.packages:
        able = " or ".join(record.packages)
        raise MissingExtra(
            f"export to {name} runs under the {able} backend only (KERAS_BACKEND is {backend}): "
            f"set KERAS_BACKEND=tensorflow, with TensorFlow installed ({_HINTS['tensorflow']})"
        )
    return record.packages[backend]


def require_format(name: str) -> Format:
    """The format ``name``, once its converters under this backend are known to be installed."""
    if name not in FORMATS:
        raise UsageError(f"unknown export format {name!r}; choose from: {', '.join(FORMATS)}")
    _require(format_packages(name), f"export to {name}")
    return FORMATS[name]


def artifact_precision(format_name: str, precision: str) -> str:
    """The precision of the artifact a runtime of ``format_name`` loads to run ``precision``:
    its own where it is quantized into one, else the float32 export's."""
    return precision if (format_name, precision) in QUANTIZERS else "float32"


def require_runtime(name: str, precision: str = "float32") -> Runtime:
    """The runtime ``name``, once it and its format's converters (and, for a quantized
    precision, its quantizer) are known to be installed."""
    if name not in SERVING_RUNTIMES:
        choices = ", ".join(SERVING_RUNTIMES)
        raise UsageError(f"unknown serving runtime {name!r}; choose from: {choices}")
    record = SERVING_RUNTIMES[name]
    _require((record.package,), f"the {name} runtime")
    require_format(record.format)
    if artifact_precision(record.format, precision) != "float32":
        backend = keras_backend_name()
        backends = QUANTIZER_BACKENDS.get(record.format, (backend,))
        if backend not in backends:
            raise MissingExtra(f"{precision} in {name} is converted under the "
                               f"{' or '.join(backends)} backend only (KERAS_BACKEND is "
                               f"{backend})")  # fmt: skip
        _require(QUANTIZERS[record.format, precision], f"{precision} in {name}")
    return record
