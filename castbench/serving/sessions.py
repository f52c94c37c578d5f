"""Load an exported artifact into its runtime, set up for one batch size and a thread count,
behind one method: ``run(images) -> {"probability": ..., "logit": ...}`` that returns only when
the outputs are host NumPy arrays. Each session records how its runtime was told to use threads
(``settings``). Each runtime is imported only when it is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from castbench.errors import UsageError
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
    this onnxruntime build has it. With ``spinning`` (ONNX Runtime's default, set here so the
    row can say so) its intra-op threads spin between operators: lower latency, a busy core
    while idle. The artifact's precision is its own (float32 or int8)."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int,
                 precision: str = "float32", spinning: bool = True) -> None:  # fmt: skip
        import onnxruntime as ort

        spin = "1" if spinning else "0"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one image stream: no parallel branches to feed
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self._session = ort.InferenceSession(str(artifact.path), options, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]
        self.threads = threads
        self.version = f"{ort.__version__} {self._session.get_providers()[0]}"
        self.settings = f"intra_op={threads} inter_op=1 spinning={spin}"

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        values = self._session.run(self._outputs, {self._input: images})
        return dict(zip(self._outputs, values, strict=True))


class LiteRTSession:
    """The LiteRT interpreter (XNNPACK on CPU), its input resized to the batch once. The
    artifact's precision is its own; float16 weights are computed in float32 on a CPU (LiteRT
    turns them into float32 before the first inference), which ``settings`` says."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int,
                 precision: str = "float32") -> None:  # fmt: skip
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
        self.settings = f"num_threads={threads}" + (
            " weights=float16 compute=float32" if precision == "float16" else ""
        )

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self._interpreter.set_tensor(self._input, images)
        self._interpreter.invoke()
        # get_tensor returns a copy, owned by the caller
        return {name: self._interpreter.get_tensor(i) for name, i in self._outputs.items()}


class PrecisionUnavailable(UsageError):
    """The runtime would run another precision than the one asked for on this machine."""


class OpenVINOSession:
    """OpenVINO on the CPU, reshaped to a static batch, compiled at ``precision``'s inference
    precision (float32 unless asked: on CPUs with bfloat16 units OpenVINO otherwise picks
    bfloat16 by itself). ``settings`` gives the precision the compiled model reports; where it
    is not the one asked for (a CPU without bfloat16 or float16 units, where OpenVINO falls
    back by itself), the session is refused rather than timed under another precision's name.
    An int8 artifact's quantized operators run int8 whatever the hint."""

    def __init__(self, artifact: Artifact, batch_size: int, threads: int,
                 precision: str = "float32") -> None:  # fmt: skip
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(artifact.path))
        size = artifact.input_size
        model.reshape([batch_size, size, size, 3])
        asked = _OPENVINO_HINTS[precision]
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": asked,
            "PERFORMANCE_HINT": "LATENCY",
        }
        compiled = core.compile_model(model, "CPU", config)
        ran = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        if ran != asked:
            raise PrecisionUnavailable(
                f"openvino does not run {precision} on this CPU: compiled with "
                f"INFERENCE_PRECISION_HINT={asked}, it runs {ran}"
            )
        self._request = compiled.create_infer_request()
        self._outputs = {_named(port.get_names()): port for port in compiled.outputs}
        self.threads = threads
        self.version = ov.__version__.split("-")[0]
        config["INFERENCE_PRECISION_HINT"] = ran  # as the compiled model reports it
        self.settings = " ".join(f"{k}={v}" for k, v in config.items())

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self._request.infer({0: images})
        return {name: self._request.get_tensor(port).data.copy()
                for name, port in self._outputs.items()}  # fmt: skip


# the inference precision each serving precision compiles at
_OPENVINO_HINTS = {"float32": "f32", "int8": "f32", "bfloat16": "bf16", "float16": "f16"}


def run_in_batches(run: Callable[[np.ndarray], dict[str, np.ndarray]], images: np.ndarray,
                   batch_size: int) -> dict[str, np.ndarray]:  # fmt: skip
    """``run``'s outputs for ``images`` (a session's ``run``, or Keras's ``predict_on_batch`` of
    the served model), fed ``batch_size`` at a time, as a session made for one batch size must
    be; a last partial batch is padded with its last image and the padding's outputs dropped."""
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - real, axis=0)])
        parts.append({name: np.asarray(value)[:real] for name, value in run(batch).items()})
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _named(names: set[str]) -> str:
    """The served output's name among the tensor names OpenVINO keeps for it."""
    served = names & set(OUTPUTS)
    return served.pop() if served else min(names)


_SESSIONS = {"onnxruntime": OnnxRuntimeSession, "litert": LiteRTSession,
             "openvino": OpenVINOSession}  # fmt: skip


def open_session(runtime: str, artifact: Artifact, batch_size: int, threads: int,
                 precision: str = "float32", **options: Any) -> Session:  # fmt: skip
    """``artifact`` loaded into ``runtime`` for batches of ``batch_size``, to run ``precision``
    (the artifact's own, or one OpenVINO compiles the float32 artifact at). ``options``: the
    runtime's own settings, such as ONNX Runtime's ``spinning=False``."""
    record = require_runtime(runtime)
    if artifact.format != record.format:
        raise ValueError(f"{runtime} loads {record.format} artifacts, not {artifact.format}")
    return _SESSIONS[runtime](artifact, batch_size, threads, precision, **options)
