"""One ``castbench timing`` run: lock the results folder, write the run's metadata, measure the
configurations (in this process, in worker processes, or in local multiworker workers) and
fill in scaling efficiencies. The CLI parses and prints; this decides where work runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from castbench.errors import UsageError
from castbench.results import ResultsFolder
from castbench.timing.config import TimingConfig
from castbench.timing.distributed import Plan, fill_scaling_efficiency, run_local_workers


def run_timing_sweep(
    matrix: list[TimingConfig],
    configs: list[TimingConfig],
    out: Path,
    distribution: Plan,
    isolate: str,
    argv: list[str],
    timeout: float | None = None,
    resume: bool = False,
    oom_retry: bool = False,
    shard: str | None = None,
) -> list[dict[str, Any]]:
    """Measure ``configs`` (this shard of ``matrix``) into ``out``; returns every row there."""
    if timeout is not None and isolate == "none" and not distribution.launch_workers:
        raise UsageError("--timeout needs worker processes: use --isolate group or config")
    folder = ResultsFolder(out)
    # one writer per folder; logical CPUs / MultiWorkerMirroredStrategy before TF starts
    with folder.locked(), distribution.process_setup(isolate):
        if folder.rows and not resume:
            raise UsageError(f"{out} already holds results; pass --resume to continue it, or "
                             "choose another --out")  # fmt: skip
        run_info = {
            "isolate": isolate,
            "shard": shard,
            "matrix": [c.key for c in matrix],
            "shard_keys": [c.key for c in configs],
        }
        of_matrix = f" (shard {shard} of the {len(matrix)})" if shard else ""
        print(f"castbench timing: {len(configs)} configurations{of_matrix} -> {out}",
              file=sys.stderr)  # fmt: skip
        local, launched = distribution.split(configs)
        if isolate == "none":
            from castbench import environment
            from castbench.timing.sweep import run_sweep

            folder.write_run_metadata({**environment.collect(argv), **run_info})
            run_sweep(local, folder, resume=resume, oom_retry=oom_retry)
        else:  # this process stays free of TensorFlow; workers measure and report
            from castbench.timing.isolation import light_metadata, run_isolated

            previous = folder.run_metadata() if resume else {}
            folder.write_run_metadata({**previous, **light_metadata(argv), **run_info})

            def on_environment(environment: dict) -> None:
                folder.write_run_metadata({**environment, **run_info})

            run_isolated(local, folder, isolate=isolate, timeout=timeout, resume=resume,
                         oom_retry=oom_retry, argv=argv, on_environment=on_environment)  # fmt: skip
        if launched:
            todo = [c for c in launched if not (resume and c.key in folder.finished_keys())]
            run_local_workers(todo, folder, distribution.workers, timeout=timeout)
        fill_scaling_efficiency(folder)
        return folder.rows
