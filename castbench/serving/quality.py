"""What a served artifact scores on a data set's test split, beside the Keras model it was
exported from: accuracy, recall, precision and F1 at the 0.5 threshold, their change against
Keras (float32), and McNemar's exact test on the images the two call differently.

Only with trained weights does this say anything: random weights score whatever the class mix
gives. Images are decoded and preprocessed as training decodes them (nearest resize, the
backbone's ``preprocess_input``), and run through each in its own batch size
(:func:`castbench.serving.sessions.run_in_batches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from castbench import backbones
from castbench.errors import UsageError
from castbench.metrics import metrics_at, predicted_defect
from castbench.stats import discordant_counts, mcnemar

THRESHOLD = 0.5
SCORES = ("accuracy_pct", "recall_pct", "precision_pct", "f1")


@dataclass(frozen=True)
class TestSplit:
    """A data set's test images, ready for the model, and their labels (1 = defect)."""

    images: np.ndarray  # float32 [N, size, size, 3] after preprocess_input
    labels: np.ndarray  # int [N]


def load_test_split(data: str, backbone: str, size: int) -> TestSplit:
    """Every test image of the casting-layout set ``data``, decoded at ``size``."""
    from castbench.data import load_casting
    from castbench.data.loader import decode_rgb

    samples = load_casting(data).test
    if not samples:
        raise UsageError(f"{data} has no test images to score on")
    pixels = np.stack([decode_rgb(s.path, size) for s in samples]).astype("float32")
    preprocess = backbones.get(backbone).preprocess_fn()
    images = np.asarray(preprocess(pixels), dtype="float32")
    return TestSplit(images, np.array([s.label for s in samples], dtype=int))


def quality_fields(labels: np.ndarray, served: np.ndarray, keras_scores: np.ndarray
                   ) -> dict[str, Any]:  # fmt: skip
    """A serving row's quality columns: the artifact's scores, Keras's, the change (artifact
    minus Keras, in points for percentages) and McNemar's p over the discordant images."""
    ours = metrics_at(labels, served, THRESHOLD)
    reference = metrics_at(labels, keras_scores, THRESHOLD)
    truth = np.asarray(labels, dtype=bool)
    keras_right = predicted_defect(keras_scores, THRESHOLD) == truth
    served_right = predicted_defect(served, THRESHOLD) == truth
    b, c = discordant_counts(keras_right, served_right)
    fields: dict[str, Any] = {"test_images": len(truth)}
    for name in SCORES:
        fields[f"test_{name}"] = ours[name]
        fields[f"keras_test_{name}"] = reference[name]
        fields[f"delta_{name}"] = ours[name] - reference[name]
    fields.update(mcnemar_keras_only=b, mcnemar_served_only=c, mcnemar_p=mcnemar(b, c).p_value)
    return fields
