"""Environment metadata of a run: versions, CPU, GPU, driver, commit, command; the light part a
process can give without loading a framework, the full part a measuring process adds; and the
check that two runs' rows come from the same environment."""

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
from castbench.runtime import keras_backend_name
from castbench.serving.registry import serve_packages

# Rows measured under different values of these are not comparable (merge, --resume).
ENVIRONMENT_FIELDS = ("backend", "device", "castbench", "keras")
# What each invocation of a run records about where it ran (run.json's ``invocations``).
SUMMARY_FIELDS = ("castbench", "commit", "host", "python", "keras", "backend", "backend_version",
                  "device", "load_avg_1m_at_start")  # fmt: skip


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


def light_metadata(argv: list[str]) -> dict[str, Any]:
    """Run metadata known without importing Keras or a backend (versions come from the installed
    packages' metadata); a measuring process adds the device with :func:`collect`."""
    backend = keras_backend_name()
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
    }


def collect(argv: list[str]) -> dict[str, Any]:
    """The full metadata: the light part, then the device and GPUs (imports Keras)."""
    return {
        **light_metadata(argv),
        "device": device_name(),
        "gpus": gpu_info(),
        "serving": {p: _version(p) for p in serve_packages()},
    }  # None: not installed


def summary(metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``metadata`` an invocation records about where it ran."""
    return {name: metadata[name] for name in SUMMARY_FIELDS if metadata.get(name) is not None}


def invocation(metadata: dict[str, Any]) -> dict[str, Any]:
    """One entry of run.json's ``invocations``: command line, start time, environment."""
    return {"command": metadata.get("command"), "started_at": metadata.get("started_at"),
            "environment": summary(metadata)}  # fmt: skip


def recorded(metadata: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The environment a results folder records: from its run.json, else from its rows."""
    env = {name: metadata.get(name) for name in ENVIRONMENT_FIELDS}
    for name in ("backend", "device"):
        if env[name] is None:
            values = {row.get(name) for row in rows if row.get(name)}
            env[name] = values.pop() if len(values) == 1 else None
    return env


def mismatches(first: dict[str, Any], second: dict[str, Any], where_first: str,
               where_second: str) -> list[str]:  # fmt: skip
    """One phrase per environment field known on both sides that differs; empty when the
    rows of the two are comparable."""
    return [
        f"{name} {first.get(name)!r} in {where_first} but {second.get(name)!r} in {where_second}"
        for name in ENVIRONMENT_FIELDS
        if first.get(name) is not None and second.get(name) is not None
        and first[name] != second[name]
    ]  # fmt: skip
