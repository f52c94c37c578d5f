"""The device's own peak: the best of a few large matrix products in the active backend.

Measured once per process and stored in ``run.json``; each row's ``pct_of_peak`` compares its
achieved FLOP/s with it, so a reader sees how far a backbone runs from what the device can do.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import keras

# float32 steps compare with float32 products; mixed-precision steps with their compute dtype
COMPUTE_DTYPE = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
REPEATS = 5
# n x n products: large enough to saturate a GPU; on a CPU 2048 (17 GFLOP) takes ~0.1 s
GPU_SIZE, CPU_SIZE = 8192, 2048


@functools.cache
def peak_gflops(dtype: str = "float32") -> float | None:
    """Best GFLOP/s of an n x n matrix product in ``dtype`` on the default device."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            return _jax_peak(dtype)
        if backend == "tensorflow":
            return _tensorflow_peak(dtype)
    except Exception:  # a dtype the device cannot multiply: no peak rather than a failed run
        return None
    return None


def peak_for_precision(precision: str) -> float | None:
    return peak_gflops(COMPUTE_DTYPE.get(precision, "float32"))


def with_device_peaks(environment: dict[str, Any]) -> dict[str, Any]:
    """A run's environment with the device's float32 and bfloat16 peaks, for run.json."""
    peaks = {dtype: peak_gflops(dtype) for dtype in ("float32", "bfloat16")}
    return {**environment, "device_peak_gflops": peaks}


def _best(run, n: int) -> float:
    run()  # compile and warm up
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def _jax_peak(dtype: str) -> float:
    import jax
    import jax.numpy as jnp

    n = GPU_SIZE if jax.devices()[0].platform == "gpu" else CPU_SIZE
    a = jnp.ones((n, n), dtype=dtype)
    product = jax.jit(jnp.matmul)
    return _best(lambda: product(a, a).block_until_ready(), n)


def _tensorflow_peak(dtype: str) -> float:
    import tensorflow as tf

    n = GPU_SIZE if tf.config.list_logical_devices("GPU") else CPU_SIZE
    a = tf.ones((n, n), dtype=dtype)

    @tf.function
    def product(x):
        return tf.reduce_sum(tf.linalg.matmul(x, x)[:1, :1])  # a small read-back waits for it

    return _best(lambda: product(a).numpy(), n)
