"""The compiled step under JAX: Keras's own ``train_step`` / ``predict_step``, jitted the way
Keras jits them (training donates its state), compiled ahead of time, with the state held here.

``train_on_batch`` hands the model's state to the same jitted function, then writes every
variable back into the model (thousands of ``Variable.assign`` calls per EfficientNetB4 step)
and walks its layers; ``fit()`` does that only at the end of an epoch. Holding the state between
steps is what a training loop does, so that is what this step times. Compiling through
``lower(...).compile()`` keeps the compile apart from the first execution, and gives XLA's own
account of the memory the step needs.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import keras

from castbench.timing.steps.base import CompileReport, FixedBatch


def _values(variables) -> list:
    return [v.value for v in variables]


class JaxCompiledStep:
    kind = "compiled"

    def __init__(self, model: keras.Model, mode: str, batch: FixedBatch) -> None:
        self.model = model
        self.mode = mode
        self.jit = bool(getattr(model, "jit_compile", True))
        if mode == "train":
            self.data = (batch.images, batch.labels, None)
            model._symbolic_build(data_batch=self.data)  # optimizer and metric variables
            # donated, as Keras does: the update reuses the state's device buffers
            function = jax.jit(model.train_step, donate_argnums=0) if self.jit else None
            self._eager = model.train_step
        else:
            self.data = (batch.images,)

            def predict_step(state, data):
                # Keras's predict function, as make_predict_function builds it: the same
                # program, so predict_on_batch loads this compile from the persistent cache
                outputs, non_trainable = model.predict_step(state, data)
                return outputs, (state[0], non_trainable)

            function = jax.jit(predict_step, donate_argnums=0) if self.jit else None
            self._eager = predict_step
        self._jitted = function
        self.state: tuple | None = None  # held between steps; taken from the model when None

    def _owners(self) -> list[list]:
        """The model's variable lists the state mirrors, in the step's order."""
        model = self.model
        owners = [model.trainable_variables, model.non_trainable_variables]
        if self.mode == "train":
            owners += [model.optimizer.variables, model.metrics_variables]
        return owners

    def _held_state(self) -> tuple:
        if self.state is None:
            self.state = tuple(_values(variables) for variables in self._owners())
        return self.state

    def compile(self) -> CompileReport | None:
        if self._jitted is None:
            return None
        start = time.perf_counter()
        lowered = self._jitted.lower(self._held_state(), self.data)
        traced = time.perf_counter()
        executable = lowered.compile()
        done = time.perf_counter()
        return CompileReport(done - start, _peak_bytes(executable), trace_s=traced - start)

    def dispatch(self) -> Any:
        # The jitted function, not the executable: its C++ dispatch path finds the executable
        # just compiled, where calling the executable object flattens the state in Python.
        function = self._jitted or self._eager
        outputs, self.state = function(self._held_state(), self.data)
        # training waits for the updated state too: the update is dispatched after the loss
        return (outputs, self.state) if self.mode == "train" else outputs

    def wait(self, handle: Any) -> None:
        jax.block_until_ready(handle)

    def __call__(self) -> None:
        self.wait(self.dispatch())

    def finish(self) -> None:
        """Write the held state back into the model, as ``fit()`` does at an epoch's end (the
        donated buffers the model's variables held are gone); the next call takes the state
        from the model again, whatever ran in between."""
        if self.state is None:
            return
        for variables, values in zip(self._owners(), self.state, strict=True):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)
        self.state = None


def _peak_bytes(executable: Any) -> int | None:
    """Bytes the step needs at its peak by XLA's account: arguments and outputs (less what the
    outputs reuse of donated arguments) plus temporaries."""
    try:
        analysis = executable.memory_analysis()
    except Exception:  # not every platform implements it
        return None
    if analysis is None:
        return None
    total = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
             - analysis.alias_size_in_bytes + analysis.temp_size_in_bytes)  # fmt: skip
    return int(total)
