"""The compiled step under TensorFlow and PyTorch: Keras's own train / predict function, the
one ``fit`` and ``predict`` call per batch (a ``tf.function`` under TensorFlow; under PyTorch
the eager step, or ``torch.compile`` of it with ``jit_compile=True``).

Both backends keep the model's state in its variables on the device, so calling the step
function directly differs from ``train_on_batch`` only by the per-call Python work around it
(building checks, metric resets, log conversion). The clock stops after the outputs are read
back to the host, which waits for the step.
"""

from __future__ import annotations

from typing import Any

import keras

from castbench.timing.steps.base import CompileReport, FixedBatch


class TrainerFunctionStep:
    kind = "compiled"

    def __init__(self, model: keras.Model, mode: str, batch: FixedBatch) -> None:
        self.model = model
        self.mode = mode
        if mode == "train":
            self.data = [(batch.images, batch.labels, None)]
            # the optimizer's variables, built as train_on_batch builds them (TensorFlow wraps
            # the shared builder to run it under its distribution strategy's scope)
            build = getattr(model, "_maybe_symbolic_build", model._symbolic_build)
            build(data_batch=self.data[0])
            model.make_train_function()
            self.function = model.train_function
        else:
            self.data = [(batch.images,)]
            model.make_predict_function()
            self.function = model.predict_function

    def compile(self) -> CompileReport | None:
        return None  # the first call traces and compiles; the engine counts it

    def dispatch(self) -> Any:
        # returns once the step is queued on a GPU's stream; a CPU runs it before returning
        return self.function(self.data)

    def wait(self, handle: Any) -> None:
        keras.tree.map_structure(keras.ops.convert_to_numpy, handle)  # waits for the step

    def __call__(self) -> None:
        self.wait(self.dispatch())

    def finish(self) -> None:
        return None  # the state never left the model's variables
