"""Which exported artifact a model may reuse. An export's JSON record says what it was made
from; an artifact is reused only when that matches the model in hand: its name (backbone and
head), input size, weights (how they were asked for, and a digest of their values), outputs and
the versions of everything that exported it. Anything else is exported anew.

The record's descriptive fields can be checked before any model is built (:func:`check_folder`,
for the CLI); the digest of the weights only once the model exists (:func:`find_reusable`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.serving.registry import (
    FORMATS,
    OUTPUTS,
    QUANTIZERS,
    format_packages,
    installed_version,
)
from castbench.spec import weights_choice

# record fields that must equal the model's for the artifact to be reused
MATCHED = ("model", "input_size", "weights", "outputs", "versions", "precision", "calibration")


class ArtifactMismatch(UsageError):
    """A required artifact is missing, or its record does not match the model."""


def export_versions(format_name: str, precision: str = "float32") -> dict[str, str | None]:
    import keras

    packages = ("keras", keras.backend.backend(), *format_packages(format_name))
    packages += QUANTIZERS.get((format_name, precision), ())  # and what quantized it
    return {package: installed_version(package) for package in dict.fromkeys(packages)}


def weights_label(weights: str) -> str:
    """How the weights were asked for, in a form that names their values: ``none`` (the seeded
    random initialisation), ``imagenet``, or a weights file's SHA-256."""
    choice = weights_choice(weights)
    if choice != "file":
        return choice
    path = Path(weights.strip())
    if not path.is_file():
        raise UsageError(f"weights file not found: {path}")
    return f"sha256:{_file_sha256(path)}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model: Any) -> str:
    """SHA-256 over every weight's name, shape and float32 values, in the model's order."""
    import numpy as np

    digest = hashlib.sha256()
    for variable in model.weights:
        values = np.ascontiguousarray(variable.numpy(), dtype=np.float32)
        digest.update(f"{variable.path}{values.shape}".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Identity:
    """What an artifact was exported from."""

    model: str  # the Keras model's name: backbone key and head
    input_size: int
    format: str
    weights: str  # weights_label
    weights_sha256: str | None  # None where the model has not been built
    outputs: tuple[str, ...] = OUTPUTS
    versions: dict[str, str | None] | None = None
    # or a quantized one (registry.QUANTIZERS): int8, LiteRT's float16. OpenVINO's bfloat16 and
    # float16 run the float32 artifact, whose identity this is then.
    precision: str = "float32"
    calibration: str | None = None  # int8: calibration_label of the images it was calibrated on

    def __post_init__(self) -> None:
        if self.versions is None:
            object.__setattr__(self, "versions", export_versions(self.format, self.precision))

    def path(self, folder: Path) -> Path:
        """Where the artifact lives in ``folder``: ``<model>_<size>px[.<precision>]<suffix>``."""
        tag = "" if self.precision == "float32" else f".{self.precision}"
        return folder / f"{self.model}_{self.input_size}px{tag}{FORMATS[self.format].suffix}"

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["outputs"] = list(self.outputs)
        return record

    def differences(self, record: dict[str, Any]) -> list[str]:
        """What in ``record`` does not match, one short phrase each (empty: it matches)."""
        found = []
        for name in MATCHED:
            mine, theirs = self.as_record()[name], record.get(name)
            if mine != theirs:
                found.append(f"{name} {theirs!r} (here {mine!r})")
        if self.weights_sha256 and record.get("weights_sha256") != self.weights_sha256:
            found.append("the weights' values differ")
        return found


def record_path(artifact: Path, format_name: str) -> Path:
    return artifact.with_name(f"{artifact.stem}.{format_name}.json")


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``; None when there is none or it is unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def mismatch(identity: Identity, folder: Path) -> str | None:
    """Why the artifact for ``identity`` in ``folder`` cannot be reused; None when it can."""
    where = record_path(identity.path(folder), identity.format)
    record = read_record(where)
    if record is None:
        return f"no export record {where}"
    missing = [name for name in record.get("files", []) if not (folder / name).is_file()]
    if missing or not record.get("files"):
        return f"{where} lists files that are not there ({', '.join(missing) or 'none'})"
    differences = identity.differences(record)
    if differences:
        return f"{where} does not match: {'; '.join(differences)}"
    return None


def config_calibration(config: Any) -> str | None:
    """The calibration a ``TimingConfig``'s artifact has (None unless it is calibrated)."""
    from castbench.timing.config import CALIBRATED

    if config.precision not in CALIBRATED:
        return None
    from castbench.serving.calibration import calibration_label

    return calibration_label(config.calibration_data, config.calibration_images)


def check_reusable(configs: list[Any]) -> None:
    """Refuse, before any model is built, timing configurations (``TimingConfig``) whose
    artifacts their ``artifacts`` folder lacks or holds from something else; the weights'
    values are compared once each model is built."""
    from castbench import backbones
    from castbench.serving.registry import SERVING_RUNTIMES, artifact_precision

    for config in configs:
        if config.runtime not in SERVING_RUNTIMES:
            continue
        name = f"{backbones.get(config.backbone).key}_{config.head}"  # as castbench.models
        format_name = SERVING_RUNTIMES[config.runtime].format
        precision = artifact_precision(format_name, config.precision)
        identity = Identity(name, config.input_size, format_name, weights_label(config.weights),
                            None, precision=precision,
                            calibration=config_calibration(config))  # fmt: skip
        reason = mismatch(identity, Path(config.artifacts))
        if reason is not None:
            raise ArtifactMismatch(f"cannot reuse the {identity.format} artifact: {reason}")
