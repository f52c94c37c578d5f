"""Load an exported artifact into its runtime, set up for one batch size and a thread count,
behind one method: ``run(images) -> {"probability": ..., "logit": ...}`` that returns only when
the outputs are host NumPy arrays. Each session records how its runtime was told to use threads
(``settings``). Each runtime is imported only when it is used.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from castbench.serving.export import Artifact
from castbench.serving.registry import (
    OUTPUTS,
    SERVING_RUNTIMES,
    installed_version,
    require_runtime,
)


class Session(Protocol):
    version: str  # the runtime's version, and where it runs when that is a choice
    threads: int
    settings: str  # the threading (and precision) settings the runtime was given

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]: ...


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


class OnnxRuntimeSession:
    """ONNX Runtime with every graph optimisation on; the CUDA execution provider first where
    this onnxruntime build has it. Its intra-op threads spin between operators (ONNX Runtime's
    default, set here so the row can say so): lower latency, a busy core while idle."""

    SPINNING = "1"

    def __init__(self, artifact: Artifact, batch_size: int, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one image stream: no parallel branches to feed
        options.add_session_config_entry("session.intra_op.allow_spinning", self.SPINNING)
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self._session = ort.InferenceSession(str(artifact.path), options, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]
        self.threads = threads
        self.version = f"{ort.__version__} {self._session.get_providers()[0]}"
        self.settings = f"intra_op={threads} inter_op=1 spinning={self.SPINNING}"

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        values = self._session.run(self._outputs, {self._input: images})
        return dict(zip(self._outputs, values, strict=True))


class LiteRTSession:
    """The LiteRT interpreter (XNNPACK on CPU), its input resized to the batch once."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(artifact.path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        size = artifact.input_size
        self._interpreter.resize_tensor_input(self._input, [batch_size, size, size, 3])
        self._interpreter.allocate_tensors()
        # output tensors in the order of their index; the signature knows their names
        signature = self._interpreter.get_signature_runner().get_output_details()
        self._outputs = {name: details["index"] for name, details in signature.items()}
        self.threads = threads
        self.version = installed_version(SERVING_RUNTIMES["litert"].package) or "unknown"
        self.settings = f"num_threads={threads}"

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self._interpreter.set_tensor(self._input, images)
        self._interpreter.invoke()
        # get_tensor returns a copy, owned by the caller
        return {name: self._interpreter.get_tensor(i) for name, i in self._outputs.items()}


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
        compiled = core.compile_model(model, "CPU", config)
        self._request = compiled.create_infer_request()
        self._outputs = {_named(port.get_names()): port for port in compiled.outputs}
        self.threads = threads
        self.version = ov.__version__.split("-")[0]
        self.settings = " ".join(f"{k}={v}" for k, v in config.items())

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self._request.infer({0: images})
        return {name: self._request.get_tensor(port).data.copy()
                for name, port in self._outputs.items()}  # fmt: skip


def _named(names: set[str]) -> str:
    """The served output's name among the tensor names OpenVINO keeps for it."""
    served = names & set(OUTPUTS)
    return served.pop() if served else min(names)


_SESSIONS = {"onnxruntime": OnnxRuntimeSession, "litert": LiteRTSession,
             "openvino": OpenVINOSession}  # fmt: skip


def open_session(runtime: str, artifact: Artifact, batch_size: int, threads: int) -> Session:
    """``artifact`` loaded into ``runtime`` for batches of ``batch_size``."""
    record = require_runtime(runtime)
    if artifact.format != record.format:
        raise ValueError(f"{runtime} loads {record.format} artifacts, not {artifact.format}")
    return _SESSIONS[runtime](artifact, batch_size, threads)
