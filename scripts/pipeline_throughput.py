"""Input-pipeline throughput, images/s, over a warm decoded cache (no model).

    .venv/bin/python scripts/pipeline_throughput.py [--data ROOT] [--size 380] [--batch 8]
        [--presets additional,none] [--batches 60]

Without --data it uses the cached small synthetic set. EfficientNet's preprocess_input (the
identity: the model rescales itself) is applied, as for EfficientNetB4 at its native 380 px.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--size", type=int, default=380)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--presets", default="additional,none")
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()

    from keras.applications import efficientnet

    from castbench.data import default_synthetic_set, load_casting, make_dataset
    from castbench.data.cache import decoded_store

    data = load_casting(args.data or default_synthetic_set())
    started = time.perf_counter()
    store = decoded_store(data.train, args.size)
    state = "decoded" if store.built else "reused"
    print(f"cache {state} in {time.perf_counter() - started:.1f} s: {store.images.shape}")
    for preset in args.presets.split(","):
        ds = make_dataset(
            data.train, args.size, args.batch, preprocess=efficientnet.preprocess_input,
            augment=preset, shuffle=True, repeat=True,
        )  # fmt: skip
        iterator = iter(ds)
        for _ in range(5):  # warm-up: the worker threads fill the queue
            next(iterator)
        started = time.perf_counter()
        for _ in range(args.batches):
            next(iterator)
        elapsed = time.perf_counter() - started
        rate = args.batches * args.batch / elapsed
        print(f"{preset:>12}: {rate:7.1f} images/s at {args.size} px, batch {args.batch}")


if __name__ == "__main__":
    main()
