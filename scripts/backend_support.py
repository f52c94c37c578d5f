"""Which backbones build and step under the current Keras backend?

    KERAS_BACKEND=jax python scripts/backend_support.py [--size 96] [NAME ...]

For each registry backbone: build it (GAP head) at --size (or its minimum), run one inference
and one training step on a random batch of 2, count forward FLOPs, and print a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import keras

from castbench import backbones
from castbench.errors import CastbenchError
from castbench.profile import profile_model
from castbench.runtime import start_quietly
from castbench.timing.config import TimingConfig
from castbench.timing.engine import StepRunner, build_for_timing


def check(name: str, size: int) -> tuple[str, str]:
    record = backbones.get(name)
    size = max(size, record.min_size)
    started = time.perf_counter()
    try:
        model = build_for_timing(TimingConfig(record.name, size, 2, "train"))
        gflops = profile_model(model)["gflops_per_image"]
        for mode in ("infer", "train"):
            StepRunner(model, TimingConfig(record.name, size, 2, mode)).step()
    except (CastbenchError, Exception) as exc:  # a survey: report every failure, go on
        return "fails", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        keras.backend.clear_session()
    counted = f"{gflops:.3f} GFLOPs" if gflops else "FLOPs not counted"
    return (
        "ok",
        f"{size}px, build + infer + train step in {time.perf_counter() - started:.0f}s, {counted}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("names", nargs="*", help="backbones to check (default: all)")
    args = parser.parse_args()
    start_quietly()
    print(f"| backbone | {keras.backend.backend()} | detail |")
    print("|---|---|---|")
    for record in backbones.resolve(args.names):
        status, detail = check(record.name, args.size)
        print(f"| {record.name} | {status} | {detail} |", flush=True)


if __name__ == "__main__":
    main()
