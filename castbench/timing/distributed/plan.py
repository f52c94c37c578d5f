"""What ``--strategy/--replicas/--workers/--profile`` ask for, checked before TensorFlow starts,
and the process set-up it needs (logical CPUs, this process's ``MultiWorkerMirroredStrategy``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.runtime import CPU_REPLICAS_ENV, start_quietly
from castbench.timing.config import STRATEGIES
from castbench.timing.distributed.strategy import cluster_size, prepare_multiworker, tf_config


def check_backend(strategies: Iterable[str], backend: str) -> None:
    """Strategies other than ``default`` are ``tf.distribute``: TensorFlow only."""
    others = sorted({s for s in strategies if s != "default"})
    if others and backend != "tensorflow":
        raise UsageError(
            f"--strategy {' '.join(others)} needs the TensorFlow backend (tf.distribute), and "
            f"KERAS_BACKEND is {backend}: set KERAS_BACKEND=tensorflow, with TensorFlow "
            "installed (pip install tensorflow)"
        )


@dataclass(frozen=True)
class Plan:
    """What ``--strategy/--replicas/--workers/--profile`` ask for, checked before TF starts."""

    strategies: tuple[str, ...]
    replicas: int | None = None
    workers: int | None = None
    launch_workers: bool = False  # --workers N: start N local worker processes
    profile: str | None = None

    @property
    def variants(self) -> list[dict[str, Any]]:
        """The strategy fields of each configuration variant, baselines first."""
        fields = {
            "default": {"strategy": "default"},
            "mirrored": {"strategy": "mirrored", "replicas": self.replicas},
            "multiworker": {"strategy": "multiworker", "workers": self.workers},
        }
        return [fields[name] for name in STRATEGIES if name in self.strategies]  # fmt: skip

    @property
    def in_process_multiworker(self) -> bool:
        """This process is one worker of a TF_CONFIG cluster: it measures in-process."""
        return "multiworker" in self.strategies and not self.launch_workers

    def split(self, configs: list) -> tuple[list, list]:
        """(configurations measured here, those the local workers measure)."""
        if not self.launch_workers:
            return list(configs), []
        here = [c for c in configs if c.strategy != "multiworker"]
        return here, [c for c in configs if c.strategy == "multiworker"]

    @contextlib.contextmanager
    def process_setup(self, isolate: str) -> Iterator[None]:
        """Logical CPUs (for measuring processes through the environment), and, when this
        process measures (``isolate`` none), its framework start and MultiWorkerMirroredStrategy,
        before anything starts TF's devices."""
        saved = os.environ.get(CPU_REPLICAS_ENV)
        try:
            if "mirrored" in self.strategies and (self.replicas or 1) > 1:
                os.environ[CPU_REPLICAS_ENV] = str(self.replicas)
            if isolate == "none":
                start_quietly()  # splits the CPU as CASTBENCH_CPU_REPLICAS says
            if self.in_process_multiworker:
                prepare_multiworker()
            yield
        finally:
            if saved is None:
                os.environ.pop(CPU_REPLICAS_ENV, None)
            else:
                os.environ[CPU_REPLICAS_ENV] = saved


def plan(
    strategies: Iterable[str],
    replicas: int | None,
    workers: int | None,
    profile: str | Path | None,
    backend: str,
) -> Plan:
    """Check the command line's distribution and profiling options (UsageError if wrong)."""
    strategies = tuple(dict.fromkeys(strategies or ["default"]))
    check_backend(strategies, backend)
    for name, value in (("replicas", replicas), ("workers", workers)):
        if value is not None and value <= 0:
            raise UsageError(f"--{name} must be a positive whole number, got {value}")
    if replicas is not None and "mirrored" not in strategies:
        raise UsageError("--replicas needs --strategy mirrored")
    if workers is not None and "multiworker" not in strategies:
        raise UsageError("--workers needs --strategy multiworker")
    launch = False
    if "multiworker" in strategies:
        if workers:
            launch = True
        else:
            config = tf_config()
            if config is None:
                raise UsageError("--strategy multiworker needs TF_CONFIG (a cluster) or "
                                 "--workers N (N local workers on 127.0.0.1)")  # fmt: skip
            workers = cluster_size(config)
    folder = None
    if profile is not None:
        from castbench.timing.profiling import check_writable

        folder = str(check_writable(profile))
    return Plan(strategies, replicas, workers, launch, folder)
