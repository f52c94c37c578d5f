"""How much does castbench's engine add to a step? Two measurements, one process:

1. the engine's own loop cost per step (clock reads, bookkeeping) on a step that does nothing;
2. the engine's median step time against a plain hand-written ``train_on_batch`` loop on the
   same compiled model and batch, interleaved in rounds so drift hits both alike.

    python scripts/engine_overhead.py [--backbone mobilenetv2] [--size 96] [--batch 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from castbench.runtime import start_quietly
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--mode", default="train", choices=("train", "infer"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    start_quietly()

    config = TimingConfig(args.backbone, args.size, args.batch, args.mode)
    runner = StepRunner(build_for_timing(config), config)
    real_step = runner.step
    runner.step = lambda: None
    loop_cost = statistics.median(runner.timed_steps(100_000))
    runner.step = real_step
    runner.timed_steps(3)  # compile and warm up

    x, y = np.asarray(runner.images), np.asarray(runner.labels)
    call = runner.model.train_on_batch if args.mode == "train" else runner.model.predict_on_batch
    plain_args = (x, y) if args.mode == "train" else (x,)
    engine, plain = [], []
    for _ in range(args.rounds):
        engine += runner.timed_steps(args.steps)
        for _ in range(args.steps):
            start = time.perf_counter()
            call(*plain_args)
            plain.append(time.perf_counter() - start)
    engine_median, plain_median = statistics.median(engine), statistics.median(plain)
    print(f"{config.key}: {len(engine)} steps each, interleaved in {args.rounds} rounds")
    print(f"engine loop cost per step (empty step): {loop_cost * 1e9:.0f} ns")
    print(f"engine median step: {engine_median * 1e3:.2f} ms "
          f"(sd {statistics.stdev(engine) * 1e3:.2f})")  # fmt: skip
    print(f"plain train_on_batch loop median: {plain_median * 1e3:.2f} ms "
          f"(sd {statistics.stdev(plain) * 1e3:.2f})")  # fmt: skip
    print(f"engine / plain: {engine_median / plain_median:.3f}")


if __name__ == "__main__":
    main()
