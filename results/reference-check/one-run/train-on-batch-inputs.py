"""MobileNetV2 224 px bs 8 training under TensorFlow: ``train_on_batch`` on numpy arrays, on
the batch's tensors, and castbench's compiled step (Keras's ``train_function`` on the held
batch), on one model, alternating in slices of 5 steps for 30 rounds."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from castbench.timing.config import TimingConfig  # noqa: E402
from castbench.timing.engine import StepRunner, build_for_timing  # noqa: E402

config = TimingConfig("MobileNetV2", 224, 8, mode="train", steps=5, warmup=2)
model = build_for_timing(config)
runner = StepRunner(model, config)
batch = runner.batch
images, labels = np.asarray(batch.images), np.asarray(batch.labels)
calls = {
    "train_on_batch numpy": lambda: model.train_on_batch(images, labels),
    "train_on_batch tensors": lambda: model.train_on_batch(batch.images, batch.labels),
    "castbench compiled step": runner.steps[runner.kind],
}
for call in calls.values():
    for _ in range(3):
        call()
samples: dict[str, list[float]] = {name: [] for name in calls}
names = list(calls)
for round_index in range(30):
    for name in names[round_index % 3 :] + names[: round_index % 3]:
        for _ in range(5):
            start = time.perf_counter()
            calls[name]()
            samples[name].append(time.perf_counter() - start)
base = statistics.median(samples[names[0]])
for name, times in samples.items():
    median = statistics.median(times)
    print(f"{name:24s} median {median * 1e3:7.1f} ms  ÷ numpy {median / base:.3f}  n={len(times)}")
print("load 1m", os.getloadavg()[0])
