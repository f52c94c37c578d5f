"""What every step kind offers the engine, and the fixed batch they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import keras

from castbench.timing.batch import random_batch
from castbench.timing.config import TimingConfig

STEP_KINDS = ("compiled", "api")


@dataclass(frozen=True)
class FixedBatch:
    """One random batch made once and placed on the device, so a step times the model alone,
    not an input pipeline."""

    images: Any
    labels: Any

    @classmethod
    def random(cls, config: TimingConfig, seed: int = 0) -> FixedBatch:
        images, labels = random_batch(config, seed)
        return cls(keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels))


@dataclass(frozen=True)
class CompileReport:
    """What an explicit ahead-of-time compile took, and what the compiler says the step needs."""

    seconds: float  # trace + lower + backend compile (or, on a persistent-cache hit, load)
    memory_bytes: int | None = None  # peak the compiled step needs (arguments, outputs, temps)
    trace_s: float = 0.0  # the trace and lowering within ``seconds``


class Step(Protocol):
    """One synchronous step: a call returns only after the device has finished everything the
    step wrote (a host read-back or ``block_until_ready``)."""

    kind: str

    def __call__(self) -> None: ...

    def compile(self) -> CompileReport | None:
        """Compile ahead of the first call where the backend allows it (None where it does
        not: the first call then compiles, and the engine counts it as compile time)."""
        ...

    def finish(self) -> None:
        """Hand any state held on the side back to the model (once, after the timed steps)."""
        ...


class PipelinedStep(Step, Protocol):
    """A step that can be queued without waiting: ``dispatch`` returns as soon as the step is
    queued, with a handle; ``wait(handle)`` returns once the device has finished it (and every
    step queued before it). Calling the step is ``wait(dispatch())``."""

    def dispatch(self) -> Any: ...

    def wait(self, handle: Any) -> None: ...
