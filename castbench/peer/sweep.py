"""Measure castbench's timing matrix with a peer framework's models and write the rows into a
results folder. Framework-free: the models come from a runner (``castbench.peer.torch_runner``
for PyTorch + timm), so the sweep, its rows and its time budget are testable without one."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from castbench import environment
from castbench.errors import UsageError, classify_failure
from castbench.peer.names import NO_EQUIVALENT, TIMM_NAMES, timm_name
from castbench.results import ResultsFolder, measured_row, row_header
from castbench.timing.config import TimingConfig, model_groups
from castbench.timing.progress import Progress
from castbench.timing.timer import measure

if TYPE_CHECKING:
    from castbench.timing.steps.base import Step

Clock = Callable[[], float]  # the sweep's clock, for its time budget
PEER_RUNTIME = "pytorch"  # the runtime column of a peer row


class PeerModel(Protocol):
    """One built model, reused for every configuration of its backbone."""

    params_total: int
    params_trainable: int

    def step(self, config: TimingConfig) -> Step:
        """One training or inference step on a fixed batch; a call returns once the device is
        done."""

    def gflops_per_image(self, input_size: int) -> float | None:
        """Counted forward FLOPs of one image at ``input_size``, ÷ 10^9."""

    def reset_peak_memory(self) -> None: ...

    def peak_memory_mb(self) -> float | None: ...

    def recover(self) -> None:
        """Free what a failed step left behind, so the next configuration starts clean."""

    def close(self) -> None: ...


class PeerRunner(Protocol):
    backend: str
    device: str
    jit_compile: bool

    def load(self, model_name: str) -> PeerModel: ...

    def metadata(self) -> dict[str, Any]: ...


def peer_key(config: TimingConfig, jit_compile: bool) -> str:
    """The configuration's key: castbench's five identity fields first (what ``compare``
    matches on), then how the peer ran."""
    mode = "compile" if jit_compile else "eager"
    return (f"{config.backbone}|{config.input_size}|{config.batch_size}|{config.mode}|"
            f"{config.precision}|{mode}|{config.head}|timm")  # fmt: skip


class PeerStepRunner:
    """One configuration's step of a peer model, as the engine measures it (a
    :class:`~castbench.timing.timer.Runner`): the framework's own training or inference step,
    the peer of castbench's compiled step. Its first call builds kernels (cuDNN autotuning,
    ``torch.compile``): its time beyond a steady step is the compile time."""

    kind = "compiled"
    model = None  # no Keras model runs here
    replicas = 1

    def __init__(self, step: Step, config: TimingConfig) -> None:
        self.config = config
        self.global_batch = config.batch_size
        self.steps = {self.kind: step}

    def finish(self) -> None:
        return None  # the model holds its own state


class PeerSweep:
    """Measures configurations into a folder until done or until the time budget is spent."""

    def __init__(self, runner: PeerRunner, folder: ResultsFolder, clock: Clock,
                 budget_s: float | None, stream: TextIO) -> None:  # fmt: skip
        self.runner = runner
        self.folder = folder
        self.clock = clock
        self.deadline = None if budget_s is None else clock() + budget_s
        self.stream = stream

    def row(self, config: TimingConfig, **fields: Any) -> dict[str, Any]:
        base = row_header(config, self.runner.device, self.runner.backend)
        # PyTorch runs these rows, not Keras: the runtime and step columns say so, and compare
        # never pairs them with a Keras row
        step = "torch.compile" if self.runner.jit_compile else "eager"
        return {**base, "key": peer_key(config, self.runner.jit_compile),
                "jit_compile": self.runner.jit_compile, **fields, "runtime": PEER_RUNTIME,
                "step": step}  # fmt: skip

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def run(self, configs: list[TimingConfig]) -> None:
        progress = Progress(len(configs), self.stream)

        def record(row: dict[str, Any]) -> None:
            progress.done(self.folder.add(row))

        for group in model_groups(configs):
            name = timm_name(group[0].backbone)
            if name is None:
                for config in group:
                    progress.start(config)
                    record(self.row(config, status="skipped", error=NO_EQUIVALENT))
                continue
            if self.out_of_time():
                return
            try:
                model = self.runner.load(name)
            except Exception as exc:  # the whole group fails the same way: one row each
                status, message = classify_failure(exc)
                for config in group:
                    progress.start(config)
                    record(self.row(config, status=status, error=f"building {name}: {message}"))
                continue
            try:
                for config in group:
                    if self.out_of_time():
                        return
                    progress.start(config)
                    record(self.measure_one(model, config))
            finally:
                model.close()

    def measure_one(self, model: PeerModel, config: TimingConfig) -> dict[str, Any]:
        params = {"params_total": model.params_total,
                  "params_trainable": model.params_trainable}  # fmt: skip
        try:
            model.reset_peak_memory()
            gflops = model.gflops_per_image(config.input_size)
            measurement = measure(PeerStepRunner(model.step(config), config), gflops)
        except Exception as exc:
            model.recover()
            status, message = classify_failure(exc)
            return self.row(config, **params, status=status, error=message)
        memory = model.peak_memory_mb()
        # the allocator's peak over the steps: what they needed, as step_mem_mb is for Keras
        fields = measured_row({}, measurement)
        fields.update(step_mem_mb=memory, step_mem_source=None if memory is None else "torch",
                      jit_resolved=self.runner.jit_compile)  # fmt: skip
        return self.row(config, **params, **fields)


def run_peer_sweep(
    matrix: list[TimingConfig],
    out: Path,
    runner: PeerRunner,
    argv: list[str],
    resume: bool = False,
    budget_s: float | None = None,
    clock: Clock = time.perf_counter,
    stream: TextIO = sys.stderr,
) -> tuple[list[dict[str, Any]], list[TimingConfig]]:
    """Measure ``matrix`` into ``out``: (every row there, the configurations left unmeasured
    when the budget ran out). With ``resume``, rows already there are kept and not remeasured."""
    folder = ResultsFolder(out)
    with folder.locked():
        if folder.rows and not resume:
            raise UsageError(f"{out} already holds results; pass --resume to continue it, or "
                             "choose another --out")  # fmt: skip
        jit = runner.jit_compile
        todo = [c for c in matrix if peer_key(c, jit) not in folder.finished_keys()]
        folder.write_run_metadata({
            **(folder.run_metadata() if resume else {}), **environment.light_metadata(argv),
            **runner.metadata(), "peer": "timm", "timm_names": TIMM_NAMES,
            "matrix": [peer_key(c, jit) for c in matrix],
        })  # fmt: skip
        print(f"castbench peer timm: {len(todo)} configurations -> {out}", file=stream)
        PeerSweep(runner, folder, clock, budget_s, stream).run(todo)
        left = [c for c in todo if peer_key(c, jit) not in folder.finished_keys()]
        return folder.rows, left
