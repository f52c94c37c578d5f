"""Ahead-of-time compilation of a matrix in N processes, before the serial timed phase.

Under JAX a configuration's compile (XLA autotuning convolutions, on a GPU) costs far more than
its timed steps; compiles are independent of each other, and the persistent cache
(:mod:`castbench.timing.compile_cache`) carries their executables to the timed phase. So the
matrix's model groups are dealt to ``jobs`` processes, balanced by cost as shards are; each
builds its models and compiles their steps into the cache. The timed phase then loads them and
times one configuration at a time, alone on the device. A configuration that fails to
pre-compile is simply compiled (and its failure reported in its row) in the timed phase; the
pre-compiling process says which one failed and why on stderr, which it shares with this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from castbench.timing.config import TimingConfig

# Compiling processes share the card: each takes what it needs instead of JAX's default pool
# of 75 % of its memory.
COMPILE_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def precompile(configs: Iterable[TimingConfig], jobs: int, stream: TextIO | None = None) -> float:
    """Compile ``configs`` into the persistent cache in ``jobs`` processes; returns the wall
    time it took."""
    stream = stream or sys.stderr  # read now: a test may have swapped it since import
    from castbench.timing.shard import assign

    batches = [batch for batch in assign(list(configs), jobs) if batch]
    if not batches:
        return 0.0
    start = time.monotonic()
    print(f"castbench timing: pre-compiling {sum(map(len, batches))} configurations in "
          f"{len(batches)} processes", file=stream)  # fmt: skip
    processes = []
    for batch in batches:
        # its output and errors go to this process's stderr (file descriptor 2), whose
        # stdout is kept for the results table
        process = subprocess.Popen([sys.executable, "-m", "castbench.timing.precompile"],
                                   stdin=subprocess.PIPE, stdout=2,
                                   env={**os.environ, **COMPILE_ENV})  # fmt: skip
        process.stdin.write(json.dumps([c.as_dict() for c in batch]).encode())
        process.stdin.close()
        processes.append(process)
    try:
        for process in processes:
            process.wait()
    except BaseException:
        for process in processes:
            process.kill()
        raise
    elapsed = time.monotonic() - start
    print(f"castbench timing: pre-compiled in {elapsed:.0f} s", file=stream)
    return elapsed


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
            print(f"castbench timing: pre-compiling {config.key} failed ({type(exc).__name__}: "
                  f"{exc}); it and the rest of its model group compile in the timed phase",
                  file=sys.stderr, flush=True)  # fmt: skip
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
