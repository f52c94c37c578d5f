"""JAX's persistent compilation cache under a castbench cache folder, and what it did.

XLA autotunes convolutions while it compiles for a GPU: an EfficientNetB4 training step takes
about 70 s per batch size. The persistent cache keeps executables across processes, so a second
run (or the timed phase after ``--compile-jobs`` pre-compilation) loads them instead. A row
records whether its compile was a cache hit; its ``compile_s`` stays the cold compile time,
which JAX stores with each entry, and the load time is kept beside it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.timing.xla_options import XlaOptions

CACHE_ENV = "CASTBENCH_COMPILE_CACHE"  # a folder, or "off"; read by every worker process
OFF = "off"


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "castbench" / "xla"


def requested_cache_dir() -> Path | None:
    """The cache folder this process should use (None: off)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() == OFF:
        return None
    return Path(value) if value else default_cache_dir()


# A process compiling the largest default configuration (EfficientNetB4 at 380 px, training)
# peaks at about this much host memory; jobs beyond what memory holds would swap or be killed.
BYTES_PER_JOB = 6 * 2**30


# Cores a host needs before pre-compiling pays: on two, each process compiles with the same
# two cores, and the whole command took 1.09-1.38x as long as compiling in the timed phase
# (three pairs, results/reference-check/precompile-jax/).
MIN_CORES_TO_PRECOMPILE = 3


def default_jobs() -> int:
    """Pre-compiling processes by default: the host's cores within what its free memory can
    hold; none on a host of fewer than ``MIN_CORES_TO_PRECOMPILE`` cores, where that is one
    process (it would only run ahead of the timed phase, not beside anything) or where a GPU
    is present (every process would autotune its convolutions on the one card, timing each
    other's kernels)."""
    import psutil

    from castbench.environment import gpu_info

    cores = os.cpu_count() or 1
    by_memory = max(1, psutil.virtual_memory().available // BYTES_PER_JOB)
    jobs = min(cores, by_memory)
    return 0 if cores < MIN_CORES_TO_PRECOMPILE or jobs < 2 or gpu_info() else jobs


@dataclass(frozen=True)
class CompileSettings:
    """How a timing run compiles: the persistent cache folder (JAX only), how many
    processes pre-compile the matrix before the timed phase, and XLA's matmul precision and
    autotuning (:mod:`castbench.timing.xla_options`)."""

    cache_dir: Path | None
    jobs: int
    xla: XlaOptions = XlaOptions()

    @classmethod
    def from_options(cls, cache: str | None, jobs: int | None, backend: str,
                     xla: XlaOptions | None = None) -> CompileSettings:  # fmt: skip
        if jobs is not None and jobs < 0:
            raise UsageError(f"--compile-jobs must be 0 or more, got {jobs}")
        xla = xla or XlaOptions()
        if backend != "jax":  # TensorFlow compiles on the first call, in the timed process
            return cls(None, 0, xla)
        folder = None if (cache or "").lower() == OFF else Path(cache or default_cache_dir())
        if folder is None or jobs == 0:
            return cls(folder, 0, xla)
        if jobs is None:
            jobs = default_jobs()
        return cls(folder, jobs, xla)

    def export(self) -> None:
        """Tell this process's workers (which read the environment) which cache to use and
        how to compile."""
        os.environ[CACHE_ENV] = str(self.cache_dir) if self.cache_dir else OFF
        self.xla.export()

    def metadata(self) -> dict[str, Any]:
        return {"compile_cache": str(self.cache_dir) if self.cache_dir else None,
                "compile_jobs": self.jobs, "xla_flags": os.environ.get("XLA_FLAGS"),
                **self.xla.metadata()}  # fmt: skip


def enable(folder: Path | None) -> str | None:
    """Point JAX's persistent cache at ``folder`` and cache every compile, however quick; a
    no-op for other backends. Returns the folder in use, or None."""
    if folder is None:
        return None
    import jax

    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _listen()
    return str(folder)


@dataclass
class CacheActivity:
    """Persistent-cache events seen while a compile ran."""

    requests: int = 0
    hits: int = 0
    saved_s: float = 0.0  # cold compile time the hits recorded, less their load time
    retrieval_s: float = 0.0

    @property
    def used(self) -> bool:
        return self.requests > 0

    @property
    def hit(self) -> bool:
        return self.used and self.hits == self.requests

    @property
    def cold_s(self) -> float:
        """The cold compile time JAX stored with the entries that were hit."""
        return self.saved_s + self.retrieval_s


_lock = threading.Lock()
_active: list[CacheActivity] = []
_listening = False


def _listen() -> None:
    global _listening
    if _listening:
        return
    from jax import monitoring

    def on_event(event: str, **_: object) -> None:
        with _lock:
            for activity in _active:
                if event == "/jax/compilation_cache/compile_requests_use_cache":
                    activity.requests += 1
                elif event == "/jax/compilation_cache/cache_hits":
                    activity.hits += 1

    def on_duration(event: str, seconds: float, **_: object) -> None:
        with _lock:
            for activity in _active:
                if event == "/jax/compilation_cache/compile_time_saved_sec":
                    activity.saved_s += seconds
                elif event == "/jax/compilation_cache/cache_retrieval_time_sec":
                    activity.retrieval_s += seconds

    monitoring.register_event_listener(on_event)
    monitoring.register_event_duration_secs_listener(on_duration)
    _listening = True


@contextmanager
def watch() -> Iterator[CacheActivity]:
    """Collect the persistent-cache events of the compiles inside the block."""
    activity = CacheActivity()
    with _lock:
        _active.append(activity)
    try:
        yield activity
    finally:
        with _lock:
            _active.remove(activity)
