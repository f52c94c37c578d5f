"""Serving rows for one built Keras model: export it once per format (or read back an earlier
export whose record matches), open a session per configuration, gate its logits against
Keras's, then time it with the engine that times Keras steps."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from castbench.results import measured_row
from castbench.serving.artifacts import ArtifactMismatch, Identity, config_calibration, mismatch
from castbench.serving.export import Artifact, export_model, identity_of, load_artifact
from castbench.serving.gate import gate_batch, gate_size, judge
from castbench.serving.outputs import with_logit
from castbench.serving.quality import TestSplit, load_test_split, quality_fields
from castbench.serving.registry import (
    LOGIT,
    PROBABILITY,
    MissingExtra,
    artifact_precision,
    require_runtime,
)
from castbench.serving.runner import RuntimeRunner
from castbench.serving.sessions import Session, open_session, run_in_batches, usable_cores
from castbench.spec import weights_choice
from castbench.timing.batch import random_batch
from castbench.timing.config import CALIBRATED, TimingConfig
from castbench.timing.timer import measure_interleaved

clock = time.perf_counter
KERAS_SCORING_BATCH = 32  # one shape for every call: a new batch shape would retrace


@dataclass
class Prepared:
    """A gated runtime step: ``runner`` is None when it is not to be timed (mismatch)."""

    runner: RuntimeRunner | None
    fields: dict[str, Any]  # the serving columns of the row, and its status


class ServingBench:
    """Artifacts and sessions for ``model`` (built from ``--weights weights``). Artifacts go
    into ``folder`` and are reused from it when their records match; without a folder, into a
    temporary one that :meth:`close` deletes. ``require``: refuse to export, reuse only."""

    def __init__(self, model: keras.Model, weights: str = "none", folder: str | None = None,
                 require: bool = False) -> None:  # fmt: skip
        self.model: keras.Model | None = model
        self._served = with_logit(model)  # Keras's reference: the outputs an artifact serves
        self._weights = weights
        self._require = require
        self._temporary = None if folder else tempfile.TemporaryDirectory(prefix="castbench-")
        self._folder = Path(folder) if folder else Path(self._temporary.name)
        self._artifacts: dict[tuple[str, str], Artifact] = {}
        self._calibration_images: np.ndarray | None = None
        self._test_split: TestSplit | None = None
        self._keras_test_scores: np.ndarray | None = None

    @classmethod
    def for_config(cls, model: keras.Model, config: TimingConfig) -> ServingBench:
        return cls(model, config.weights, config.artifacts, config.reuse_only)

    def artifact(self, format_name: str, config: TimingConfig | None = None) -> Artifact:
        """The artifact for ``format_name`` that runs ``config``'s precision (float32 without
        one; the float32 one where a session runs the precision from it): reused where the
        folder has a matching one, else exported, or quantized (an ExportError propagates for
        every batch size)."""
        precision = artifact_precision(format_name, config.precision) if config else "float32"
        if (format_name, precision) not in self._artifacts:
            identity = identity_of(self.model, format_name, self._weights)
            if precision != "float32":
                identity = replace(identity, precision=precision, versions=None,
                                   calibration=config_calibration(config))  # fmt: skip
            found = load_artifact(identity, self._folder)
            if found is None and self._require:
                raise ArtifactMismatch(f"cannot reuse the {format_name} artifact: "
                                       f"{mismatch(identity, self._folder)}")  # fmt: skip
            self._artifacts[format_name, precision] = found or self._make(identity, config)
        return self._artifacts[format_name, precision]

    def _make(self, identity: Identity, config: TimingConfig | None) -> Artifact:
        if identity.precision == "float32":
            return export_model(self.model, identity.format, self._folder, self._weights)
        from castbench.serving.quantize import FROM_MODEL, quantize_artifact

        images = self._calibration(config) if config.precision in CALIBRATED else None
        # LiteRT converts from the Keras model; the others quantize the float32 export
        source = self.model if identity.format in FROM_MODEL else self.artifact(identity.format)
        return quantize_artifact(source, identity, images, self._folder)

    def _calibration(self, config: TimingConfig) -> np.ndarray:
        if self._calibration_images is None:
            from castbench.serving.calibration import calibration_images

            self._calibration_images = calibration_images(
                config.calibration_data, config.backbone, config.input_size,
                config.calibration_images)  # fmt: skip
        return self._calibration_images

    def _gate_images(self, config: TimingConfig) -> np.ndarray:
        """Random images; for a calibrated artifact, calibration images (of the training
        split): the ranges it was calibrated for."""
        if config.precision not in CALIBRATED:
            return gate_batch(config.input_size, config.batch_size)
        images = self._calibration(config)
        return np.resize(images, (gate_size(config.batch_size), *images.shape[1:]))

    def prepare(self, config: TimingConfig) -> Prepared:
        """Export or reuse, open a session for ``config``'s batch and compare its logits with
        Keras's on the gate batch. A missing runtime gives a ``skipped`` status."""
        try:
            runtime = require_runtime(config.runtime, config.precision)
        except MissingExtra as exc:
            return Prepared(None, {"status": "skipped", "error": str(exc)})
        artifact = self.artifact(runtime.format, config)
        threads = config.threads or usable_cores()
        start = clock()
        session = open_session(config.runtime, artifact, config.batch_size, threads,
                               config.precision)  # fmt: skip
        session_s = clock() - start
        images = self._gate_images(config)
        reference = self._served.predict_on_batch(images)
        verdict = judge(run_in_batches(session.run, images, config.batch_size)[LOGIT],
                        reference[LOGIT], config.precision,
                        random_weights=weights_choice(self._weights) == "none")  # fmt: skip
        fields: dict[str, Any] = {
            "runtime_version": session.version,
            "threads": session.threads,
            "runtime_settings": session.settings,
            **verdict.fields(),
            # the served probabilities' spread: 0 where they saturate, which is why the gate
            # compares logits
            "keras_output_range": float(np.ptp(reference[PROBABILITY])),
            # 0 for an artifact reused from --artifacts; quantized: the quantization's time
            "export_s": artifact.export_s,
            "artifact_reused": artifact.reused,
            # like compile time, what it costs before the first request, apart from warm-up
            "session_s": session_s,
            "artifact_mb": artifact.size_mb,
            "jit_compile": None,
            "status": verdict.status,
            "error": verdict.error(config.runtime),
        }
        if verdict.status == "mismatch":
            return Prepared(None, fields)
        images, _ = random_batch(config)  # the batch the Keras step of this configuration sees
        return Prepared(RuntimeRunner(session, config, images), fields)

    def measure(self, config: TimingConfig, gflops_per_image: float | None) -> dict[str, Any]:
        """The measured and serving fields of ``config``'s row (not timed on a mismatch)."""
        (fields,) = self.measure_round_robin([config], gflops_per_image)
        if isinstance(fields, Exception):
            raise fields
        return fields

    def measure_round_robin(self, configs: list[TimingConfig], gflops_per_image: float | None
                            ) -> list[dict[str, Any] | Exception]:  # fmt: skip
        """The fields of each configuration's row, its runtime gated first, then the gated
        runtimes timed round robin (:func:`~castbench.timing.timer.measure_interleaved`) so that
        the machine's drift hits them alike. A configuration that fails before it is timed
        gives its exception in its place; the others are still timed."""
        prepared: list[Prepared | Exception] = []
        for config in configs:
            try:
                prepared.append(self.prepare(config))
            except Exception as exc:  # this runtime's failure, not its neighbours'
                prepared.append(exc)
        results: list[dict[str, Any] | Exception] = [
            p if isinstance(p, Exception) else p.fields for p in prepared
        ]
        timed = [i for i, p in enumerate(prepared) if isinstance(p, Prepared) and p.runner]
        runners = [prepared[i].runner for i in timed]
        measurements = measure_interleaved(runners, gflops_per_image) if runners else []
        together = " ".join(configs[i].runtime for i in timed)
        for i, measurement in zip(timed, measurements, strict=True):
            fields = prepared[i].fields
            row = measured_row(fields, measurement)
            row["interleaved_with"] = together
            if configs[i].test_data:  # after the timing: the timed phase is the same without
                row.update(self._quality(prepared[i].runner.step.session, configs[i]))
            results[i] = {**row, "status": fields["status"]}  # ungated stays ungated
        return results

    def _quality(self, session: Session, config: TimingConfig) -> dict[str, Any]:
        """The test split scored by ``session`` and by Keras (once per model)."""
        if self._test_split is None:
            self._test_split = load_test_split(config.test_data, config.backbone,
                                               config.input_size)  # fmt: skip
            self._keras_test_scores = run_in_batches(
                self._served.predict_on_batch, self._test_split.images, KERAS_SCORING_BATCH
            )[PROBABILITY]
        served = run_in_batches(session.run, self._test_split.images, config.batch_size)
        return quality_fields(self._test_split.labels, served[PROBABILITY],
                              self._keras_test_scores)  # fmt: skip

    def close(self) -> None:
        self.model = self._served = self._calibration_images = None  # nothing kept alive
        self._test_split = self._keras_test_scores = None
        self._artifacts.clear()
        if self._temporary is not None:
            self._temporary.cleanup()
