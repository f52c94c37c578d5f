"""Serving rows for one built Keras model: export it once per format (into a temporary folder
that lives as long as the model), open a session per configuration, gate its outputs against
Keras's, then time it with the engine that times Keras steps."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from castbench.results import measured_row
from castbench.serving.export import Artifact, export_model
from castbench.serving.gate import FLOAT32_TOLERANCE, max_abs_diff, passes
from castbench.serving.registry import MissingExtra, require_runtime
from castbench.serving.runner import RuntimeRunner, fixed_batch
from castbench.serving.sessions import open_session, usable_cores
from castbench.timing.config import TimingConfig
from castbench.timing.engine import measure

clock = time.perf_counter


@dataclass
class Prepared:
    """A gated runtime step: ``runner`` is None when it did not pass the gate."""

    runner: RuntimeRunner | None
    fields: dict[str, Any]  # the serving columns of the row, and its status


class ServingBench:
    """Exports and sessions for ``model``; call :meth:`close` to delete the artifacts."""

    def __init__(self, model: keras.Model) -> None:
        self.model: keras.Model | None = model
        self._folder = tempfile.TemporaryDirectory(prefix="castbench-serving-")
        self._artifacts: dict[str, Artifact] = {}

    def artifact(self, format_name: str) -> Artifact:
        if format_name not in self._artifacts:  # an ExportError propagates for every batch size
            self._artifacts[format_name] = export_model(
                self.model, format_name, Path(self._folder.name)
            )
        return self._artifacts[format_name]

    def prepare(self, config: TimingConfig) -> Prepared:
        """Export (once), open a session for ``config``'s batch and compare its outputs with
        Keras's on the fixed batch. A missing runtime gives a ``skipped`` status."""
        try:
            runtime = require_runtime(config.runtime)
        except MissingExtra as exc:
            return Prepared(None, {"status": "skipped", "error": str(exc)})
        artifact = self.artifact(runtime.format)
        threads = config.threads or usable_cores()
        start = clock()
        session = open_session(config.runtime, artifact, config.batch_size, threads)
        session_s = clock() - start
        images = fixed_batch(config)
        reference = self.model.predict_on_batch(images)
        diff = max_abs_diff(session.run(images), reference)
        fields: dict[str, Any] = {
            "runtime_version": session.version,
            "threads": session.threads,
            "max_abs_diff": diff,
            # 0 when Keras gives every image the same output (random weights can make a deep
            # network's features vanish): then the gate above cannot tell models apart
            "keras_output_range": float(reference.max() - reference.min()),
            # like compile time, what it costs before the first request, apart from warm-up
            "export_s": artifact.export_s + session_s,
            "artifact_mb": artifact.size_mb,
            "jit_compile": None,
        }
        if not passes(diff):
            fields.update(status="mismatch",
                          error=f"max |{config.runtime} - keras| = {diff:.3g} on the fixed "
                          f"batch, over the float32 tolerance {FLOAT32_TOLERANCE:g}")  # fmt: skip
            return Prepared(None, fields)
        return Prepared(RuntimeRunner(session, config, images), {**fields, "status": "ok"})

    def measure(self, config: TimingConfig, gflops_per_image: float | None) -> dict[str, Any]:
        """The measured and serving fields of ``config``'s row (not timed unless gated ok)."""
        prepared = self.prepare(config)
        if prepared.runner is None:
            return prepared.fields
        return measured_row(prepared.fields, measure(prepared.runner, gflops_per_image))

    def close(self) -> None:
        self.model = None  # the caller frees the model; this must not keep it alive
        self._artifacts.clear()
        self._folder.cleanup()
