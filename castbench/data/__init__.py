"""The casting data: the Kaggle-layout loader, the synthetic stand-in, the decoded cache and the
input pipeline. ``make_dataset`` is imported lazily: it is the only part that imports Keras
(and so starts its backend)."""

from castbench.data.loader import CastingData, Sample, load_casting, split_validation
from castbench.data.synth import default_synthetic_set, generate

__all__ = [
    "CastingData",
    "Sample",
    "default_synthetic_set",
    "generate",
    "load_casting",
    "make_dataset",
    "split_validation",
]


def __getattr__(name: str):
    if name == "make_dataset":
        from castbench.data.pipeline import make_dataset

        return make_dataset
    raise AttributeError(f"module 'castbench.data' has no attribute {name!r}")
