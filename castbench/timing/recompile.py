"""Count the traces and compiles that happen while timed steps run.

A timed step must run the executable compiled before it. A dtype or sharding mismatch between
the model's state and the step's output state, or a shape that changed, makes the backend trace
and compile again inside a timed sample; its time would then be averaged in unseen. A row whose
counter is not zero says so (``recompiled``) and is never reported as a clean measurement.

- JAX reports every trace and backend compile through :mod:`jax.monitoring`.
- TensorFlow's ``tf.function`` objects count their own traces; the ones Keras builds for the
  train / predict step sit in the closures of ``model.train_function`` / ``predict_function``.
- Other backends, and processes without Keras (the PyTorch peer): unknown (None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from castbench.runtime import loaded_keras_backend

if TYPE_CHECKING:
    import keras

# jax._src.dispatch's event names (JAXPR_TRACE_EVENT, BACKEND_COMPILE_EVENT)
JAX_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/backend_compile_duration",
)


class CompileCounter:
    """Context manager: ``count`` is the traces and compiles seen inside the block (None where
    the backend cannot tell); entered again, inside all its blocks together."""

    def __init__(self, model: keras.Model | None) -> None:
        self.model = model
        self.count: int | None = None
        self._backend = loaded_keras_backend()
        self._listener: Callable[..., None] | None = None
        self._tf_before = 0

    def __enter__(self) -> CompileCounter:
        if self._backend == "jax":
            from jax import monitoring

            self.count = self.count or 0

            def on_duration(event: str, *_: Any, **__: Any) -> None:
                if event in JAX_COMPILE_EVENTS:
                    self.count = (self.count or 0) + 1

            self._listener = on_duration
            monitoring.register_event_duration_secs_listener(on_duration)
        elif self._backend == "tensorflow" and self.model is not None:
            self._tf_before = _tf_traces(self.model)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._listener is not None:
            from jax import monitoring

            monitoring.unregister_event_duration_listener(self._listener)
        elif self._backend == "tensorflow" and self.model is not None:
            self.count = (self.count or 0) + _tf_traces(self.model) - self._tf_before


def _tf_traces(model: keras.Model) -> int:
    """Traces of every ``tf.function`` reachable from the model's step functions."""
    seen: set[int] = set()
    total = 0
    pending = [getattr(model, name, None) for name in ("train_function", "predict_function")]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        counter = getattr(item, "experimental_get_tracing_count", None)
        if counter is not None:
            total += counter()
            item = getattr(item, "python_function", item)
        for cell in getattr(item, "__closure__", None) or ():
            try:
                pending.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
    return total
