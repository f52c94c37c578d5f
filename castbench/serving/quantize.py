"""Post-training quantization, each format with its runtime's own tooling. int8 from the
exported float32 artifact: ONNX Runtime's static quantization (QDQ, per-channel weights, MinMax
calibration) and OpenVINO's NNCF; from the Keras model: TensorFlow's LiteRT converter, full
integer (int8 weights and activations, float32 input and output) or float16 weights. int8
calibrates activation ranges on images from a data set's training split
(:mod:`castbench.serving.calibration`)."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from castbench.serving.artifacts import Identity
from castbench.serving.export import (
    Artifact,
    ExportError,
    export_served,
    openvino_telemetry_declined,
    recorded,
)

clock = time.perf_counter
FROM_MODEL = ("litert",)  # formats quantized from the Keras model, not from the float32 export


def quantize_artifact(source: Artifact | keras.Model, identity: Identity,
                      images: np.ndarray | None, folder: Path) -> Artifact:  # fmt: skip
    """``source`` (the float32 artifact, or for a format in ``FROM_MODEL`` the Keras model)
    quantized as ``identity`` says, calibrated on ``images`` where the precision is, written
    into ``folder`` with its record; ``export_s`` is the quantization's time."""
    path = identity.path(folder)
    origin = source.path if isinstance(source, Artifact) else source
    start = clock()
    try:
        with openvino_telemetry_declined():
            _QUANTIZERS[identity.format, identity.precision](origin, path, images)
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


def _litert_int8(model: keras.Model, target: Path, images: np.ndarray) -> None:
    import tensorflow as tf

    def representative():  # one calibration image per call, as the converter asks for them
        for i in range(len(images)):
            yield [images[i : i + 1]]

    # every operator int8 (the converter refuses a model where one cannot be); the input and the
    # outputs stay float32, quantized and dequantized inside the model
    export_served(model, "litert", target, optimizations=[tf.lite.Optimize.DEFAULT],
                  representative_dataset=representative,
                  target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                  inference_input_type=tf.float32, inference_output_type=tf.float32)  # fmt: skip


def _litert_float16(model: keras.Model, target: Path, images: None) -> None:
    import tensorflow as tf

    # float16 weights; on a CPU, LiteRT turns them into float32 before the first inference
    export_served(model, "litert", target, optimizations=[tf.lite.Optimize.DEFAULT],
                  target_spec={"supported_types": [tf.float16]})  # fmt: skip


_QUANTIZERS = {("onnx", "int8"): _onnx_int8, ("openvino", "int8"): _openvino_int8,
               ("litert", "int8"): _litert_int8,
               ("litert", "float16"): _litert_float16}  # fmt: skip
