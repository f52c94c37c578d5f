"""Profiler traces of a few steady steps, taken after the timed steps so that tracing does not
distort the numbers: TensorFlow's profiler under TensorFlow, ``jax.profiler`` under JAX,
``torch.profiler`` (a Chrome trace) under PyTorch. One subfolder per configuration key.

Open a TensorFlow or JAX trace with TensorBoard's profile plugin (``tensorboard --logdir DIR``)
or xprof; the PyTorch trace (``trace.json``) with Perfetto or chrome://tracing.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from castbench.errors import UsageError

PROFILE_STEPS = 3


def folder_name(key: str) -> str:
    """A configuration key as a portable folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_.") or "config"


def check_writable(root: str | Path) -> Path:
    """``root`` created (if needed) and writable, as an absolute path; a UsageError if not."""
    path = Path(root).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".castbench-write-test"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write profiler traces to {path}: {exc.strerror or exc}") from None
    return path


def capture(runner: Any, root: str | Path, steps: int = PROFILE_STEPS) -> str:
    """Trace ``steps`` steps of ``runner`` into ``root/<key>``; returns that folder."""
    import keras

    folder = Path(root) / folder_name(runner.config.key)
    folder.mkdir(parents=True, exist_ok=True)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.profiler.experimental.start(str(folder))
        try:
            for _ in range(steps):
                runner.step()
        finally:
            tf.profiler.experimental.stop()
    elif backend == "jax":
        import jax

        jax.profiler.start_trace(str(folder))
        try:
            for _ in range(steps):
                runner.step()
        finally:
            jax.profiler.stop_trace()
    elif backend == "torch":
        import torch

        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as profiler:
            for _ in range(steps):
                runner.step()
        profiler.export_chrome_trace(str(folder / "trace.json"))
    else:
        raise RuntimeError(f"no profiler for the {backend} backend")
    return str(folder)


def trace_files(folder: str | Path) -> list[Path]:
    """The trace files a capture wrote (``*.xplane.pb``, ``*.trace.json.gz``, ``trace.json``)."""
    patterns = ("*.xplane.pb", "*.trace.json.gz", "trace.json")
    return sorted({p for pattern in patterns for p in Path(folder).rglob(pattern)})
