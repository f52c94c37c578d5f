"""Process-wide runtime set-up: which Keras backend, a quiet TensorFlow start, and the logical
CPU devices a ``mirrored`` strategy needs on a machine without GPUs.

Only processes that measure call :func:`start_quietly`; the parent of an isolated sweep never
does, so it loads no framework."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from castbench.errors import UsageError

# How many logical CPU devices to make, set by ``castbench timing`` for the processes it starts.
CPU_REPLICAS_ENV = "CASTBENCH_CPU_REPLICAS"


def keras_backend_name() -> str:
    """The backend Keras will use, read without importing Keras."""
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower() or "tensorflow"


def loaded_keras_backend() -> str | None:
    """The backend of the Keras this process has imported; None where nothing imported Keras
    (the PyTorch peer's process), without importing it."""
    keras = sys.modules.get("keras")
    return None if keras is None else keras.backend.backend()


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed`` that seeds TensorFlow only where TensorFlow runs.

    Keras seeds TensorFlow too whenever it can import it, so under JAX or PyTorch, on a machine
    that also has TensorFlow, every seeded build would load all of TensorFlow (seconds and
    hundreds of MB) to seed a framework the process never calls. Keras asks its lazy
    ``tensorflow`` module whether it is available; for this call the answer is no, and the
    module forgets it afterwards, so a later TensorFlow-only feature still imports it."""
    import keras

    try:
        from keras.src.utils.module_utils import tensorflow as lazy
    except ImportError:  # a Keras that keeps it elsewhere: seed as Keras does
        lazy = None
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or lazy is None:
        keras.utils.set_random_seed(seed)
        return
    lazy._available = False
    try:
        keras.utils.set_random_seed(seed)
    finally:
        lazy._available = None


def import_tensorflow() -> Any:
    """TensorFlow, for the TensorFlow backend; without it, one line naming what to install."""
    try:
        import tensorflow as tf
    except ImportError:
        raise UsageError(
            "KERAS_BACKEND is tensorflow (the default) but TensorFlow is not installed: "
            "pip install tensorflow, or set KERAS_BACKEND=jax or torch"
        ) from None
    return tf


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
            tf = import_tensorflow()
            tf.config.list_physical_devices()  # device probing happens here, also noisily
        tf.get_logger().setLevel("ERROR")  # TF1 profiler deprecation notices (FLOP counting)
    else:
        import_tensorflow()
    # logical CPU devices for a mirrored strategy: only before TF initialises its devices
    split_cpu_from_environment()


def split_cpu(count: int) -> None:
    """Make ``count`` logical CPU devices (no-op with GPUs or for one); before TF starts."""
    if count <= 1:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return  # mirrored uses the GPUs
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:  # TensorFlow has already initialised its devices
        have = len(tf.config.list_logical_devices("CPU"))
        if have < count:
            raise UsageError(
                f"cannot split the CPU into {count} logical devices: TensorFlow has already "
                f"started here with {have}; measure in separate processes (--isolate group)"
            ) from None


def split_cpu_from_environment() -> None:
    """Apply ``CASTBENCH_CPU_REPLICAS`` (set by the command line for the processes it starts)."""
    text = os.environ.get(CPU_REPLICAS_ENV, "").strip()
    if text.isdigit():
        split_cpu(int(text))
