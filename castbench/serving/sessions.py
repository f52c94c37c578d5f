"""Load an exported artifact into its runtime, set up for one batch size and a thread count,
behind one method: ``run(images) -> probabilities`` that returns only when the output is a host
NumPy array. Each runtime is imported only when it is used.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from castbench.serving.export import Artifact
from castbench.serving.registry import SERVING_RUNTIMES, installed_version, require_runtime


class Session(Protocol):
    version: str  # the runtime's version, and where it runs when that is a choice
    threads: int

    def run(self, images: np.ndarray) -> np.ndarray: ...


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


class OnnxRuntimeSession:
    """ONNX Runtime with every graph optimisation on; the CUDA execution provider first where
    this onnxruntime build has it."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one image stream: no parallel branches to feed
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self._session = ort.InferenceSession(str(artifact.path), options, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self.threads = threads
        self.version = f"{ort.__version__} {self._session.get_providers()[0]}"

    def run(self, images: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: images})[0]


class LiteRTSession:
    """The LiteRT interpreter (XNNPACK on CPU), its input resized to the batch once."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(artifact.path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        size = artifact.input_size
        self._interpreter.resize_tensor_input(self._input, [batch_size, size, size, 3])
        self._interpreter.allocate_tensors()
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.threads = threads
        self.version = installed_version(SERVING_RUNTIMES["litert"].package) or "unknown"

    def run(self, images: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input, images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)  # a copy, owned by the caller


class OpenVINOSession:
    """OpenVINO on the CPU, reshaped to a static batch, in float32: on CPUs with bfloat16
    units OpenVINO otherwise picks bfloat16 by itself, which is another precision."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(artifact.path))
        size = artifact.input_size
        model.reshape([batch_size, size, size, 3])
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._request = core.compile_model(model, "CPU", config).create_infer_request()
        self.threads = threads
        self.version = ov.__version__.split("-")[0]

    def run(self, images: np.ndarray) -> np.ndarray:
        self._request.infer({0: images})
        return self._request.get_output_tensor(0).data.copy()


_SESSIONS = {"onnxruntime": OnnxRuntimeSession, "litert": LiteRTSession,
             "openvino": OpenVINOSession}  # fmt: skip


def open_session(runtime: str, artifact: Artifact, batch_size: int, threads: int) -> Session:
    """``artifact`` loaded into ``runtime`` for batches of ``batch_size``."""
    record = require_runtime(runtime)
    if artifact.format != record.format:
        raise ValueError(f"{runtime} loads {record.format} artifacts, not {artifact.format}")
    return _SESSIONS[runtime](artifact, batch_size, threads)
