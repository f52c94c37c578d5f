"""A measured training epoch over the real input pipeline, reporting how long the model waited
for data. The step-time columns time the model alone; this shows whether the input side keeps
up (the seed study's per-batch times mixed the two)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from castbench import backbones
from castbench.timing.config import TimingConfig

if TYPE_CHECKING:
    import keras

clock = time.perf_counter


def training_split(data_path: str) -> list:
    """The training images of a casting-layout data set, less its validation split."""
    from castbench.data import load_casting, split_validation

    train, _ = split_validation(load_casting(data_path).train)
    return train


def measure_epoch(model: keras.Model, config: TimingConfig) -> dict[str, Any]:
    """One epoch of ``config.steps_per_epoch`` full batches through ``make_dataset``.

    The data set repeats so that the last step is a full batch too: a partial batch would
    retrace the step function and put compile time into the epoch. ``model`` must already be
    warmed up at this batch size.
    """
    from castbench.data import make_dataset

    samples = training_split(config.epoch_data)
    preprocess = backbones.get(config.backbone).preprocess_fn()
    dataset = make_dataset(samples, config.input_size, config.batch_size, preprocess,
                           augment=config.augment, shuffle=True, repeat=True)  # fmt: skip
    batches = iter(dataset)
    waited = 0.0
    started = clock()
    for _ in range(config.steps_per_epoch):
        before = clock()
        images, labels = next(batches)
        waited += clock() - before
        model.train_on_batch(images, labels)
    total = clock() - started
    return {
        "epoch_measured_s": total,
        "data_wait_s": waited,
        "data_wait_fraction": waited / total if total > 0 else None,
    }
