"""Is the synthetic casting set a fair stand-in? Two checks, rerunnable:

1. Mean brightness alone must not separate the classes: the ROC AUC of per-image mean brightness
   (defect vs ok) over train + test should lie near 0.5 (0.3-0.7).
2. A small CNN (four conv-BN-ReLU-pool blocks, global max pooling, batch 16, 5 epochs at
   128 px, no augmentation) must learn something but not reach 100 % test accuracy.

    .venv/bin/python scripts/small_cnn_check.py [--data ROOT] [--size 128] [--epochs 3]

Without --data it uses the cached small synthetic set (generated on first use).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random defect scores above a random ok image (ties count half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = labels.sum(), len(labels) - labels.sum()
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_brightness(paths) -> np.ndarray:
    return np.array([np.asarray(Image.open(p).convert("L"), np.float32).mean() for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from castbench.data import default_synthetic_set, load_casting, make_dataset, split_validation

    root = args.data or default_synthetic_set()
    data = load_casting(root)
    everything = data.train + data.test
    labels = np.array([s.label for s in everything])
    auc = roc_auc(mean_brightness([s.path for s in everything]), labels)
    print(f"mean-brightness AUC (defect vs ok, {len(everything)} images): {auc:.3f}")

    import keras

    keras.utils.set_random_seed(args.seed)
    train, validation = split_validation(data.train, 0.2, seed=args.seed)

    def scale(x):
        return x / 127.5 - 1.0

    def dataset(samples, shuffle):
        return make_dataset(
            samples, args.size, args.batch, preprocess=scale, shuffle=shuffle, seed=args.seed
        )

    model = keras.Sequential(
        [keras.Input((args.size, args.size, 3))]
        + [
            layer
            for filters in (16, 32, 64, 64)
            for layer in (
                keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
                keras.layers.BatchNormalization(momentum=0.9),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(),
            )
        ]
        # Defects are small and local: max pooling keeps the strongest local response.
        + [keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(
        dataset(train, True),
        validation_data=dataset(validation, False),
        epochs=args.epochs,
        verbose=2,
    )
    trained = time.perf_counter() - started
    probabilities = model.predict(dataset(data.test, False), verbose=0)[:, 0]
    test_labels = np.array([s.label for s in data.test])
    predicted = (probabilities >= 0.5).astype(int)
    accuracy = float((predicted == test_labels).mean())
    recall = float(predicted[test_labels == 1].mean())
    print(
        f"small CNN, {args.epochs} epochs at {args.size} px ({trained:.0f} s): "
        f"test accuracy {accuracy:.1%}, recall {recall:.1%} on {len(test_labels)} images "
        f"(majority class {max(test_labels.mean(), 1 - test_labels.mean()):.1%})"
    )


if __name__ == "__main__":
    main()
