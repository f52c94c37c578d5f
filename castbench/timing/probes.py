"""Resource probes sampled in a background thread while a row's own timed steps run, and only
then: peak host RSS (psutil) and, when an NVIDIA GPU is present, the memory, utilisation and
power of the GPU the backend uses (pynvml)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psutil

from castbench.runtime import loaded_keras_backend

SAMPLE_INTERVAL_S = 0.05
MIN_NVML_WINDOW_S = 2.0


def nvml_device_index(backend: str | None = None) -> int | str:
    """The GPU the backend computes on, as NVML names it: NVML counts every GPU in the machine,
    while the backend counts those ``CUDA_VISIBLE_DEVICES`` leaves it, in that variable's order.
    An int is NVML's index; a str is the GPU's UUID where the variable lists UUIDs."""
    local = 0
    if (backend or loaded_keras_backend()) == "jax":
        import jax

        device = jax.devices()[0]
        local = device.id if device.platform == "gpu" else 0
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    visible = [v for v in visible if v]
    if local >= len(visible):
        return local
    return int(visible[local]) if visible[local].isdigit() else visible[local]


class _Nvml:
    """pynvml for the GPU the backend uses, or nothing when there is no NVIDIA driver."""

    def __init__(self) -> None:
        self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() > 0:
                index = nvml_device_index()
                self.handle = (pynvml.nvmlDeviceGetHandleByIndex(index) if isinstance(index, int)
                               else pynvml.nvmlDeviceGetHandleByUUID(index))  # fmt: skip
                self.nvml = pynvml
        except Exception:  # no driver, no library, no device: GPU fields stay empty
            self.handle = None

    def sample(self) -> tuple[float, float, float] | None:
        """(memory used MB, utilisation %, power W), or None."""
        if self.handle is None:
            return None
        try:
            memory = self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20
            utilisation = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
            power = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0
        except Exception:
            return None
        return memory, float(utilisation), power


class ResourceMonitor:
    """Context manager around the timed steps of one step kind; after it exits, ``result()``
    holds the peaks and means it saw, the window's length and the energy integrated over it.

    NVML averages utilisation and power over windows of its own (up to about a second), so a
    timed phase that wants them should last ``MIN_NVML_WINDOW_S`` at least (``wants_window``).
    """

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._nvml = _Nvml()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_rss = 0
        # (t, memory, util, power) per window: energy is integrated within a window, never
        # across the gap between two
        self._gpu: list[list[tuple[float, float, float, float]]] = []
        self._windows: list[tuple[float, float]] = []

    @property
    def wants_window(self) -> float:
        """Seconds the timed phase should last for NVML's figures to mean anything (0: none)."""
        return MIN_NVML_WINDOW_S if self._nvml.handle is not None else 0.0

    def _sample(self) -> None:
        self._peak_rss = max(self._peak_rss, self._process.memory_info().rss)
        gpu = self._nvml.sample()
        if gpu is not None:
            self._gpu[-1].append((time.perf_counter(), *gpu))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> ResourceMonitor:
        """Open a window; a monitor may be entered again (interleaved timed slices), and its
        figures then cover every window it was entered for."""
        self._gpu.append([])
        self._sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._windows.append((time.perf_counter(), 0.0))
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._windows[-1] = (self._windows[-1][0], time.perf_counter())
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def window_s(self) -> float:
        return sum(end - start for start, end in self._windows)

    def energy_j(self) -> float | None:
        """Power integrated over each window (trapezoids between samples), in joules."""
        windows = [w for w in self._gpu if len(w) >= 2]
        if not windows:
            return None
        return sum((b[0] - a[0]) * (a[3] + b[3]) / 2
                   for w in windows for a, b in zip(w, w[1:], strict=False))  # fmt: skip

    def result(self) -> dict[str, Any]:
        gpu = [sample for window in self._gpu for sample in window]
        return {
            "peak_rss_mb": round(self._peak_rss / 2**20, 1),
            # memory the driver counts as used on the card: under JAX that includes its
            # preallocated pool, so step_mem_mb is the figure for what a step needs
            "nvml_gpu_mem_used_mb": round(max(g[1] for g in gpu), 1) if gpu else None,
            "gpu_util_pct": round(sum(g[2] for g in gpu) / len(gpu), 1) if gpu else None,
            "gpu_power_w": round(sum(g[3] for g in gpu) / len(gpu), 1) if gpu else None,
            "probe_window_s": round(self.window_s, 4),
        }


class DeviceMemory:
    """The peak bytes the backend's allocator handed out while the block ran, on a GPU under
    TensorFlow (``get_memory_info``, reset at the start) or under JAX with preallocation off
    (``memory_stats``). This is what the steps needed, not the allocator's pool that NVML sees.
    None on a CPU and wherever the backend does not report it."""

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self.source: str | None = None

    def __enter__(self) -> DeviceMemory:
        self._backend = loaded_keras_backend()
        self._tf_gpu = self._backend == "tensorflow" and _tf_gpu()  # asked once, used twice
        if self._tf_gpu:
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        return self

    def __exit__(self, *exc_info: object) -> None:
        """The block's peak; entered again, the largest of its blocks' peaks."""
        try:
            if self._tf_gpu:
                import tensorflow as tf

                peak = int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
                self._keep(peak, "tensorflow")
            elif self._backend == "jax":
                self._read_jax()
        except Exception:  # a figure the backend cannot give stays empty
            self.peak_bytes = None

    def _keep(self, peak: int, source: str) -> None:
        self.peak_bytes = max(peak, self.peak_bytes or 0)
        self.source = source

    def _read_jax(self) -> None:
        import jax

        device = jax.devices()[0]
        preallocated = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true").lower() != "false"
        if device.platform == "cpu" or preallocated:
            return  # the CPU reports nothing; a preallocated pool reports itself
        stats = device.memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            self._keep(int(stats["peak_bytes_in_use"]), "jax-allocator")


def _tf_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
