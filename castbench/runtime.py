"""Process-wide runtime set-up: which Keras backend, and a quiet TensorFlow start."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def keras_backend_name() -> str:
    """The backend Keras will use, read without importing Keras."""
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower() or "tensorflow"


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_quietly() -> None:
    """Start TensorFlow with its C++ start-up chatter hidden.

    TensorFlow writes CUDA-probing lines to file descriptor 2 before its logging is set up, so
    no environment variable silences them; they bury castbench's own output. Set
    CASTBENCH_TF_LOGS=1 to see them (e.g. when a GPU is not found).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if keras_backend_name() != "tensorflow":
        return
    if os.environ.get("CASTBENCH_TF_LOGS") != "1":
        with _stderr_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing happens here, also noisily
        tf.get_logger().setLevel("ERROR")  # TF1 profiler deprecation notices (FLOP counting)
    # logical CPU devices for a mirrored strategy: only before TF initialises its devices
    from castbench.timing.distributed import split_cpu_from_environment

    split_cpu_from_environment()
