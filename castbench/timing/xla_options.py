"""How XLA computes and compiles a JAX timing run: the precision of float32 matmuls and
convolutions, and how hard the GPU compiler autotunes.

Both travel in the environment, like the compile cache's folder, so that every process
castbench starts (pool workers, pre-compiling processes) compiles the same programs: JAX reads
``JAX_DEFAULT_MATMUL_PRECISION`` when it is imported, XLA reads ``XLA_FLAGS`` when its backend
starts, and both are part of the persistent compile cache's key.

Matmul precision, for float32 inputs (bfloat16 and float16 matmuls are not affected):

- ``default``: JAX's default. On Ampere and Hopper GPUs XLA runs float32 matmuls and
  convolutions on tensor cores as TF32 (inputs rounded to a 10-bit mantissa, float32
  accumulation); on a CPU it is plain float32.
- ``high``: TF32 on those GPUs as well (three bfloat16 passes on a TPU).
- ``highest``: full float32 everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from castbench.errors import UsageError
from castbench.runtime import keras_backend_name

MATMUL_PRECISIONS = ("default", "high", "highest")
PRECISION_ENV = "JAX_DEFAULT_MATMUL_PRECISION"
# XLA's GPU autotuning levels: 0 off; 1 on; 2, 3 and 4 (the default) also initialise,
# re-initialise and cross-check the candidates' buffers. Off skips timing the candidate
# kernels of every convolution and GEMM fusion, where an EfficientNetB4 training step's GPU
# compile spends much of its time; what it costs in step time is for a GPU run to measure.
FAST_COMPILE_FLAG = "--xla_gpu_autotune_level=0"
# Fields of run.json that rows measured under different values of are not comparable.
RUN_FIELDS = ("matmul_precision", "fast_compile")


def requested_matmul_precision() -> str:
    """The precision JAX will use in the processes this one starts (without importing JAX)."""
    return os.environ.get(PRECISION_ENV, "").strip() or "default"


@dataclass(frozen=True)
class XlaOptions:
    matmul_precision: str | None = None  # None: JAX's own (its environment variable, else default)
    fast_compile: bool = False

    @classmethod
    def from_options(cls, matmul_precision: str | None, fast_compile: bool,
                     backend: str) -> XlaOptions:  # fmt: skip
        if matmul_precision is not None and matmul_precision not in MATMUL_PRECISIONS:
            raise UsageError(f"unknown matmul precision {matmul_precision!r}; choose from: "
                             f"{', '.join(MATMUL_PRECISIONS)}")  # fmt: skip
        if backend != "jax":
            options = (("--matmul-precision", matmul_precision), ("--fast-compile", fast_compile))
            given = [flag for flag, value in options if value]
            if given:
                raise UsageError(f"{' and '.join(given)} set how XLA compiles under JAX; run "
                                 "with KERAS_BACKEND=jax")  # fmt: skip
        return cls(matmul_precision, fast_compile)

    def export(self) -> None:
        """Tell this process's workers (which read the environment) what to compile with."""
        if self.matmul_precision is not None:
            os.environ[PRECISION_ENV] = self.matmul_precision
        flags = os.environ.get("XLA_FLAGS", "").split()
        if self.fast_compile and FAST_COMPILE_FLAG not in flags:  # the last of a flag wins
            os.environ["XLA_FLAGS"] = " ".join([*flags, FAST_COMPILE_FLAG])

    def metadata(self) -> dict[str, Any]:
        """run.json's record; ``export`` first, so the precision is what workers will use."""
        jax = keras_backend_name() == "jax"
        return {"matmul_precision": requested_matmul_precision() if jax else None,
                "fast_compile": self.fast_compile}  # fmt: skip


def apply_matmul_precision() -> None:
    """Set JAX's matmul precision from the environment in a process that imported JAX before
    the variable was set (``--isolate none`` in a process that had already started JAX)."""
    value = os.environ.get(PRECISION_ENV, "").strip()
    if value:
        import jax

        jax.config.update("jax_default_matmul_precision", value)


def effective_matmul_precision() -> str | None:
    """What float32 matmuls and convolutions run at in this process, in JAX's words: JAX's
    setting; under TensorFlow ``default`` while it lets them run as TF32 (its default) and
    ``highest`` when it does not; None for other backends."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.config.jax_default_matmul_precision or "default"
    if backend == "tensorflow":
        import tensorflow as tf

        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        return "default" if tf32 else "highest"
    return None


def resume_conflicts(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One phrase per field of ``RUN_FIELDS`` that a folder's run.json and this run both know
    and that differs."""
    return [f"{name} {recorded[name]!r} in the folder but {current[name]!r} in this run"
            for name in RUN_FIELDS
            if recorded.get(name) is not None and current.get(name) is not None
            and recorded[name] != current[name]]  # fmt: skip
