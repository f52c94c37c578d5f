"""Post-training int8 quantization of an exported float32 artifact, each format with its
runtime's own tooling: ONNX Runtime's static quantization (QDQ, per-channel weights, MinMax
calibration) and OpenVINO's NNCF. Both calibrate activation ranges on images from a data set's
training split (:mod:`castbench.serving.calibration`)."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from castbench.serving.artifacts import Identity
from castbench.serving.export import Artifact, ExportError, openvino_telemetry_declined, recorded

clock = time.perf_counter


def quantize_artifact(source: Artifact, identity: Identity, images: np.ndarray, folder: Path
                      ) -> Artifact:  # fmt: skip
    """``source`` (float32) quantized as ``identity`` says, calibrated on ``images``, written
    into ``folder`` with its record; ``export_s`` is the quantization's time."""
    path = identity.path(folder)
    start = clock()
    try:
        with openvino_telemetry_declined():
            _QUANTIZERS[source.format](source.path, path, images)
    except Exception as exc:  # the quantizer's own reason, in one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExportError(
            f"{identity.model} cannot be quantized to {identity.precision} for "
            f"{identity.format}: {reason}"
        ) from None
    return recorded(identity, path, clock() - start)


def _onnx_int8(source: Path, target: Path, images: np.ndarray) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = onnx.load(str(source), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        """One calibration image per call, as ONNX Runtime's calibrator asks for them."""

        def __init__(self) -> None:
            self._batches = iter(images[i : i + 1] for i in range(len(images)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory(prefix="castbench-quantize-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"  # shapes inferred, graph optimised first
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)  # fmt: skip


def _openvino_int8(source: Path, target: Path, images: np.ndarray) -> None:
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)  # it logs each step and draws progress bars otherwise
    model = ov.Core().read_model(str(source))
    dataset = nncf.Dataset([images[i : i + 1] for i in range(len(images))])
    quantized = nncf.quantize(model, dataset, subset_size=len(images))
    ov.save_model(quantized, str(target), compress_to_fp16=False)


_QUANTIZERS = {"onnx": _onnx_int8, "openvino": _openvino_int8}
