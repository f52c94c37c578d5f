"""Environment metadata, written once per run: versions, CPU, GPU, driver, commit, command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from castbench import __version__
from castbench.serving.registry import serve_packages


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> list[dict[str, Any]]:
    """Name, memory and driver/CUDA versions of each NVIDIA GPU; empty without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    gpus = []
    driver = pynvml.nvmlSystemGetDriverVersion()
    cuda = pynvml.nvmlSystemGetCudaDriverVersion()
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        gpus.append({
            "index": index,
            "name": name.decode() if isinstance(name, bytes) else name,
            "memory_mb": round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20),
            "driver": driver.decode() if isinstance(driver, bytes) else driver,
            "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}",
        })  # fmt: skip
    return gpus


def device_name() -> str:
    """What the timed steps ran on, as the Keras backend sees it."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":  # jax calls every CPU "cpu"
            return f"cpu:{_cpu_model()}"
        return f"{device.platform}:{device.device_kind}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0]
            )
            return f"gpu:{details.get('device_name', gpus[0].name)}"
        return f"cpu:{_cpu_model()}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"gpu:{torch.cuda.get_device_name(0)}"
        return f"cpu:{_cpu_model()}"
    return backend


def git_commit() -> str | None:
    """castbench's own commit, when it runs from a git checkout (``+dirty`` with changes)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if commit and dirty else (commit or None)


def collect(argv: list[str]) -> dict[str, Any]:
    import keras

    backend = keras.backend.backend()
    return {
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["castbench", *argv]),
        "castbench": __version__,
        "commit": git_commit(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_1m_at_start": os.getloadavg()[0],
        "keras": _version("keras"),
        "backend": backend,
        "backend_version": _version(
            {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
        ),  # fmt: skip
        "numpy": _version("numpy"),
        "serving": {p: _version(p) for p in serve_packages()},  # None: not installed
        "device": device_name(),
        "gpus": gpu_info(),
    }
