"""MobileNetV2 224 px bs 8 training under TensorFlow: castbench's compiled step and
``train_on_batch`` on numpy arrays, on one model, alternating in slices of 5 steps for 30
rounds; the deciles of each side's steps, and the per-round and pooled median ratios."""

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
images, labels = np.asarray(runner.batch.images), np.asarray(runner.batch.labels)
calls = {
    "castbench compiled step": runner.steps[runner.kind],
    "train_on_batch numpy": lambda: model.train_on_batch(images, labels),
}
for call in calls.values():
    for _ in range(3):
        call()
names = list(calls)
rounds: dict[str, list[list[float]]] = {name: [] for name in names}
for round_index in range(30):
    for name in names[round_index % 2 :] + names[: round_index % 2]:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            calls[name]()
            times.append(time.perf_counter() - start)
        rounds[name].append(times)
print("load 1m", os.getloadavg()[0])
for name in names:
    pooled = sorted(sum(rounds[name], []))
    deciles = [pooled[int(q * (len(pooled) - 1))] * 1e3 for q in np.linspace(0, 1, 11)]
    print(f"{name:24s} n={len(pooled)} median {statistics.median(pooled) * 1e3:.1f} ms  "
          f"mean {statistics.mean(pooled) * 1e3:.1f} ms  deciles {' '.join(f'{d:.0f}' for d in deciles)}")
ours, theirs = (sum(rounds[n], []) for n in names)
print("pooled median ratio", round(statistics.median(ours) / statistics.median(theirs), 4))
print("mean ratio", round(statistics.mean(ours) / statistics.mean(theirs), 4))
# blocks of 6 slices (30 steps a side), as the check's rounds of 20-30 steps
blocks = [(sum(rounds[names[0]][i:i + 6], []), sum(rounds[names[1]][i:i + 6], [])) for i in range(0, 30, 6)]
ratios = [statistics.median(a) / statistics.median(b) for a, b in blocks]
print("per-block median ratios", " ".join(f"{r:.3f}" for r in ratios), "median", round(statistics.median(ratios), 4))
