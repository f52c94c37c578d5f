"""A training run's last finished epoch on disk, so that an interrupted run goes on from it.

After every epoch the training loop writes the model's weights, the optimizer's variables (its
step count, which drives the learning-rate schedule, and its moments) and the loop's own state:
history, epoch times, the best epoch so far and how many passes the input pipeline has drawn (a
batch is a pure function of the seed and its pass, so the next epoch sees the batches it would
have seen). The state file is replaced last and atomically, so it only ever names complete
files; a finished run removes them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from castbench.errors import UsageError
from castbench.files import atomic_write_text

STATE_FILE = "checkpoint.json"
PREFIX = "checkpoint-epoch"


class EpochCheckpoint:
    """The checkpoint of one run in ``folder``; ``fingerprint`` (the run's settings) must match
    for a run to go on from it."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any]) -> None:
        self.folder = folder
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE

    def save(self, model: Any, epoch: int, state: dict[str, Any]) -> None:
        """Write epoch ``epoch``'s weights and optimizer, then the state that names them."""
        weights = f"{PREFIX}{epoch}.weights.h5"
        optimizer = f"{PREFIX}{epoch}.optimizer.npz"
        model.save_weights(str(self.folder / weights))
        with open(self.folder / optimizer, "wb") as handle:  # np.savez would add a suffix
            np.savez(handle, *(variable.numpy() for variable in model.optimizer.variables))
        payload = {"fingerprint": self.fingerprint, "epoch": epoch, "weights": weights,
                   "optimizer": optimizer, "state": state}  # fmt: skip
        atomic_write_text(self.state_path, json.dumps(payload, indent=1, allow_nan=False))
        self._remove(keep={weights, optimizer})

    def restore(self, model: Any) -> tuple[int, dict[str, Any]] | None:
        """Load the last finished epoch into ``model``: (that epoch, the loop's state), or
        None when the folder holds no checkpoint."""
        if not self.state_path.is_file():
            return None
        try:
            payload = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot resume from {self.state_path}: {exc}") from None
        if payload.get("fingerprint") != self.fingerprint:
            raise UsageError(
                f"cannot resume from {self.state_path}: it was written with other settings; "
                "train without --resume to start over"
            )
        model.load_weights(str(self.folder / payload["weights"]))
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)  # its moments exist once it is built
        with np.load(self.folder / payload["optimizer"]) as stored:
            values = [stored[f"arr_{index}"] for index in range(len(stored.files))]
        if len(values) != len(optimizer.variables):
            raise UsageError(f"cannot resume from {self.state_path}: the optimizer differs")
        for variable, value in zip(optimizer.variables, values, strict=True):
            variable.assign(value)
        return payload["epoch"], payload["state"]

    def clear(self) -> None:
        """Remove the checkpoint (a finished run, or one started over)."""
        self.state_path.unlink(missing_ok=True)
        self._remove(keep=set())

    def _remove(self, keep: set[str]) -> None:
        for path in self.folder.glob(f"{PREFIX}*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
