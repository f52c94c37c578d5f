"""Progress of a sweep on stderr: one line per configuration, with what is running, the
elapsed time and an estimate of the rest."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from castbench.timing.config import TimingConfig


class Progress:
    """One line per configuration: what is running, elapsed time and an estimate of the rest."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.finished = 0

    def _clock(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.finished == 0:
            return f"{_duration(elapsed)} elapsed"
        left = elapsed / self.finished * (self.total - self.finished)
        return f"{_duration(elapsed)} elapsed, ~{_duration(left)} left"

    def start(self, config: TimingConfig) -> None:
        label = (f"[{self.finished + 1}/{self.total}] {config.backbone} {config.input_size}px "
                 f"bs {config.batch_size} {config.mode}")  # fmt: skip
        label += f" {config.runtime}" if config.runtime != "keras" else ""
        self.stream.write(f"{label:<48} ... ")
        self.stream.flush()

    def done(self, row: dict[str, Any]) -> None:
        self.finished += 1
        if row["status"] == "ok":
            outcome = (f"{row['step_s_median'] * 1e3:8.1f} ms/step ±{row['step_s_std'] * 1e3:.1f}"
                       f"  {row['images_per_s']:7.1f} img/s")  # fmt: skip
        else:
            outcome = f"{row['status']}: {row['error']}"
        self.stream.write(f"{outcome}  ({self._clock()})\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
