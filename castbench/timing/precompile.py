"""Ahead-of-time compilation of a matrix in N processes, before the serial timed phase.

Under JAX a configuration's compile (XLA autotuning convolutions, on a GPU) costs far more than
its timed steps; compiles are independent of each other, and the persistent cache
(:mod:`castbench.timing.compile_cache`) carries their executables to the timed phase. So the
matrix's configurations are dealt one by one, heaviest first, to the process with the least
work so far (a process builds each backbone it is dealt once); each compiles its steps into
the cache and logs to ``OUT/logs/precompile-<i>.log``. The timed phase then loads them and
times one configuration at a time, alone on the device. A configuration that fails to
pre-compile is compiled (and its failure reported in its row) in the timed phase, and the
pre-compile's summary names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from castbench.timing.config import TimingConfig

# Compiling processes share the card: each takes what it needs instead of JAX's default pool
# of 75 % of its memory.
COMPILE_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


FAILED = "pre-compile failed: "  # how a compiling process reports a configuration it failed


@dataclass(frozen=True)
class Precompiled:
    seconds: float  # wall time of the whole phase
    failed: tuple[str, ...]  # one line per configuration (or process) that failed


def deal(configs: list[TimingConfig], jobs: int) -> list[list[TimingConfig]]:
    """Single configurations, heaviest first, each to the process with the least work so far
    (longest processing time first: the phase lasts as long as its busiest process)."""
    from castbench.timing.shard import config_cost

    loads = [0.0] * jobs
    batches: list[list[TimingConfig]] = [[] for _ in range(jobs)]
    for config in sorted(configs, key=config_cost, reverse=True):
        least = min(range(jobs), key=lambda job: (loads[job], job))
        batches[least].append(config)
        loads[least] += config_cost(config)
    return [batch for batch in batches if batch]


def precompile(configs: Iterable[TimingConfig], jobs: int, logs: Path,
               stream: TextIO | None = None) -> Precompiled:  # fmt: skip
    """Compile ``configs`` into the persistent cache in ``jobs`` processes, each logging to
    ``logs``; returns the phase's wall time and what failed."""
    stream = stream or sys.stderr  # read now: a test may have swapped it since import
    batches = deal(list(configs), jobs)
    if not batches:
        return Precompiled(0.0, ())
    logs.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    print(f"castbench timing: pre-compiling {sum(map(len, batches))} configurations in "
          f"{len(batches)} processes (logs: {logs})", file=stream)  # fmt: skip
    processes = []
    for index, batch in enumerate(batches, start=1):
        log = logs / f"precompile-{index}.log"
        with open(log, "wb") as output:  # the child keeps its own descriptor
            process = subprocess.Popen([sys.executable, "-m", "castbench.timing.precompile"],
                                       stdin=subprocess.PIPE, stdout=output, stderr=output,
                                       env={**os.environ, **COMPILE_ENV})  # fmt: skip
        process.stdin.write(json.dumps([c.as_dict() for c in batch]).encode())
        process.stdin.close()
        processes.append((process, log))
    try:
        for process, _ in processes:
            process.wait()
    except BaseException:
        for process, _ in processes:
            process.kill()
        raise
    failed = tuple(line for process, log in processes for line in _failures(process, log))
    elapsed = time.monotonic() - start
    print(f"castbench timing: pre-compiled in {elapsed:.0f} s, {len(failed)} failed", file=stream)
    for line in failed:
        print(f"castbench timing: {FAILED}{line}", file=stream)
    return Precompiled(elapsed, failed)


def _failures(process: subprocess.Popen, log: Path) -> list[str]:
    text = log.read_text(errors="replace")
    lines = [line.split(FAILED, 1)[1] for line in text.splitlines() if FAILED in line]
    if process.returncode != 0:
        lines.append(f"process exited with code {process.returncode}; see {log}")
    return lines


def compile_configs(configs: list[TimingConfig]) -> None:
    """Build each model group once and compile each configuration's compiled step."""
    import gc

    import keras

    from castbench.timing.config import model_groups
    from castbench.timing.engine import StepRunner, build_for_timing

    for group in model_groups(configs):
        config = group[0]
        try:
            model = build_for_timing(config)
            for config in group:
                runner = StepRunner(model, config)
                runner.steps["compiled"].compile()
        except Exception as exc:  # the timed phase compiles it again and records the failure
            print(f"{FAILED}{config.key} ({type(exc).__name__}: {exc}); it and the rest of "
                  "its model group compile in the timed phase", flush=True)  # fmt: skip
        finally:
            model = None
            keras.backend.clear_session()
            gc.collect()


def main() -> int:
    from castbench.runtime import start_quietly

    configs = [TimingConfig(**fields) for fields in json.loads(sys.stdin.read())]
    start_quietly()
    compile_configs(configs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
