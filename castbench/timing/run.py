"""One ``castbench timing`` run: lock the results folder, record the invocation in its
``run.json``, measure the configurations (in this process, in a process pool, or in local
multiworker workers) and fill in scaling efficiencies. The CLI parses and prints; this decides
where work runs.

With ``--isolate group|config`` (the default) this process loads no framework: the pool's
processes import TensorFlow, Keras or JAX and report the device; only ``--isolate none`` (and a
``TF_CONFIG`` cluster member, which measures in-process) starts one here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castbench import environment
from castbench.errors import UsageError
from castbench.results import ResultsFolder
from castbench.timing.compile_cache import CompileSettings
from castbench.timing.config import TimingConfig
from castbench.timing.distributed.launcher import run_local_workers
from castbench.timing.distributed.plan import Plan
from castbench.timing.distributed.scaling import fill_scaling_efficiency
from castbench.timing.precompile import precompile
from castbench.timing.xla_options import resume_conflicts


@dataclass(frozen=True)
class SweepSettings:
    """How a timing run measures its configurations, as one value from the command line on."""

    isolate: str = "group"  # none | group | config: where measurements run
    argv: tuple[str, ...] = ()  # the command line, for run.json and the pool's processes
    timeout: float | None = None  # per configuration (separate processes only)
    resume: bool = False  # keep the folder's rows, measure what is missing
    oom_retry: bool = False  # retry an out-of-memory configuration once in a fresh process
    shard: str | None = None  # "i/n": this run's share of the matrix
    compile: CompileSettings = CompileSettings(None, 0)
    processes: int = 1  # fresh processes per configuration (repeats across processes)

    def check(self, distribution: Plan) -> None:
        """Refuse combinations that cannot work, before anything slow starts."""
        if self.processes < 1:
            raise UsageError(f"--processes must be a positive whole number, got {self.processes}")
        in_process = self.isolate == "none" and not distribution.launch_workers
        if self.timeout is not None and in_process:
            raise UsageError("--timeout needs separate processes: use --isolate group or config")
        if self.processes > 1 and (self.isolate == "none" or distribution.launch_workers):
            raise UsageError("--processes needs fresh processes: use --isolate group or config, "
                             "with the default strategy")  # fmt: skip


def run_timing_sweep(
    matrix: list[TimingConfig],
    configs: list[TimingConfig],
    out: Path,
    distribution: Plan,
    settings: SweepSettings,
) -> list[dict[str, Any]]:
    """Measure ``configs`` (this shard of ``matrix``) into ``out``; returns every row there.

    Under JAX with ``settings.compile.jobs``, the configurations still to measure are compiled
    into the persistent cache in that many processes first."""
    settings.check(distribution)
    resume, shard, isolate = settings.resume, settings.shard, settings.isolate
    compile_settings = settings.compile
    folder = ResultsFolder(out)
    with folder.locked():  # one writer per folder
        if folder.rows and not resume:
            raise UsageError(f"{out} already holds results; pass --resume to continue it, or "
                             "choose another --out")  # fmt: skip
        metadata = environment.light_metadata(list(settings.argv))
        if resume:
            check_resumable(folder, {**metadata, **compile_settings.metadata()})
        folder.flush()  # an empty shard, too, leaves a results folder that merge reads
        folder.start_invocation(environment.invocation(metadata), {**metadata, "isolate": isolate,
                                "shard": shard, "matrix": [c.key for c in matrix],
                                "shard_keys": [c.key for c in configs],
                                **compile_settings.metadata()})  # fmt: skip
        of_matrix = f" (shard {shard} of the {len(matrix)})" if shard else ""
        print(f"castbench timing: {len(configs)} configurations{of_matrix} -> {out}",
              file=sys.stderr)  # fmt: skip
        if not configs:
            print(f"castbench timing: shard {shard} is empty (whole model groups go to one "
                  f"shard); {out} holds no rows", file=sys.stderr)  # fmt: skip
            return folder.rows
        if compile_settings.jobs:
            todo = [c for c in configs if c.key not in folder.finished_keys()]
            done = precompile(todo, compile_settings.jobs, folder.path / "logs")
            summary = {"precompile_s": round(done.seconds, 1),
                       "precompile_failed": list(done.failed)}  # fmt: skip
            folder.complete_invocation(summary, summary)
        # logical CPUs / MultiWorkerMirroredStrategy before TF starts
        with distribution.process_setup(isolate):
            _measure(configs, folder, distribution, settings)
        fill_scaling_efficiency(folder)
        return folder.rows


def check_resumable(folder: ResultsFolder, current: dict[str, Any]) -> None:
    """Refuse to add rows measured in another environment to ``folder`` (the check merge
    makes); fields not known yet on either side are checked when they are."""
    run_metadata = folder.run_metadata()
    recorded = environment.recorded(run_metadata, folder.rows)
    differ = environment.mismatches(recorded, current, str(folder.path), "this run")
    differ += resume_conflicts(run_metadata, current)
    if differ:
        raise UsageError(f"cannot --resume: {'; '.join(differ)}; measure into a new --out "
                         "(castbench merge --allow-mixed joins such folders)")  # fmt: skip


def _measure(configs: list[TimingConfig], folder: ResultsFolder, distribution: Plan,
             settings: SweepSettings) -> None:  # fmt: skip
    resume, oom_retry, timeout = settings.resume, settings.oom_retry, settings.timeout
    isolate, argv = settings.isolate, list(settings.argv)

    def on_environment(full: dict[str, Any]) -> None:
        if resume:
            check_resumable(folder, full)
        folder.complete_invocation(full, environment.summary(full))

    local, launched = distribution.split(configs)
    if local and isolate == "none":
        from castbench.timing.peak import with_device_peaks
        from castbench.timing.sweep import run_sweep

        on_environment(with_device_peaks(environment.collect(argv)))
        run_sweep(local, folder, resume=resume, oom_retry=oom_retry)
    elif local:  # this process stays free of any framework; the pool measures and reports
        from castbench.timing.pool import run_isolated
        from castbench.timing.processes import run_repeated

        def run_once(todo: list[TimingConfig], into: ResultsFolder) -> None:
            run_isolated(todo, into, isolate=isolate, timeout=timeout, resume=True,
                         oom_retry=oom_retry, argv=argv, on_environment=on_environment)  # fmt: skip

        if settings.processes == 1:
            run_isolated(local, folder, isolate=isolate, timeout=timeout, resume=resume,
                         oom_retry=oom_retry, argv=argv, on_environment=on_environment)  # fmt: skip
        else:
            run_repeated(local, folder, settings.processes, run_once)
    if launched:
        todo = [c for c in launched if not (resume and c.key in folder.finished_keys())]
        run_local_workers(todo, folder, distribution.workers, timeout=timeout)
