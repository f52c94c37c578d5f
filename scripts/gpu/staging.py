"""Stages run in order within one time budget, each packed into OUT the moment it ends.

A stage gets min(its cap, what is left of the budget less a final reserve) seconds and is never
started with less than its minimum: a budget that runs out skips the stages left, with a line
naming each. A stage's commands run in a process group of their own; at its limit less a grace
period the group gets SIGINT (castbench keeps every finished row and stops its workers), at the
limit SIGKILL, so a stage never outlasts its time. Its folder, with the log of its output, is
then archived into OUT as ``<stage>.tar.gz``, so a call cut short keeps every stage it ended.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

# What a lent GPU machine brings back from OUT (/work/.library/device/README.md).
MAX_OUT_FILES = 8
MAX_FILE_BYTES = 16 * 2**20
MAX_OUT_BYTES = 64 * 2**20
# Longest a stage's processes get between SIGINT and SIGKILL (at most a tenth of the stage):
# castbench stops its workers and exits within a second or two of SIGINT.
GRACE_S = 10.0
STAGE_FILE = "stage.json"  # a stage's outcome, kept in its folder
LOG_FILE = "stage.log"  # everything its commands printed

Commands = Callable[[Path, float], list[list[str]]]


@dataclass(frozen=True)
class Stage:
    """One step of the run: ``commands(folder, seconds)`` gives the command lines, run in turn
    with ``folder`` as their output folder and ``seconds`` the stage's whole limit."""

    name: str  # the folder's and the archive's name
    min_s: float  # never started with less
    commands: Commands
    share: float = 1.0  # of the whole budget, at most
    cap_s: float = math.inf  # at most, whatever the budget
    repeat: bool = False  # run again even when a carried-in folder shows it finished


@dataclass
class Budget:
    """Seconds for the whole call, counted from ``started`` (a ``time.time()``), less
    ``reserve_s`` kept for packing after the last stage."""

    total_s: float
    started: float
    reserve_s: float
    clock: Callable[[], float] = time.time

    def left(self) -> float:
        return self.total_s - (self.clock() - self.started) - self.reserve_s

    def limit_for(self, stage: Stage) -> float:
        """What ``stage`` may take now (it is run only when this reaches its minimum)."""
        return max(0.0, min(stage.cap_s, stage.share * self.total_s, self.left()))


@dataclass
class Outcome:
    name: str
    status: str  # finished | failed | cut | skipped | done-earlier
    reason: str = ""
    limit_s: float | None = None
    seconds: float | None = None
    returncode: int | None = None
    archive: str | None = None


@dataclass
class Summary:
    """What ``stages.json`` holds: the budget, each stage's outcome, and notes (the cache)."""

    budget_s: float
    outcomes: list[Outcome] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def names(self, *statuses: str) -> list[str]:
        return [o.name for o in self.outcomes if o.status in statuses]

    def line(self) -> str:
        parts = [f"{status}: {', '.join(self.names(status))}"
                 for status in ("finished", "done-earlier", "cut", "failed", "skipped")
                 if self.names(status)]  # fmt: skip
        return "; ".join(parts) or "no stages"

    def write(self, path: Path) -> None:
        payload = {"budget_s": self.budget_s, "stages": [asdict(o) for o in self.outcomes],
                   **self.notes}  # fmt: skip
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def _listen_to_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_command(argv: Sequence[str], limit_s: float, log: TextIO, env: dict[str, str],
                echo: TextIO = sys.stdout) -> tuple[int, bool]:  # fmt: skip
    """Run ``argv`` for at most ``limit_s`` seconds, its output copied to ``log`` and
    ``echo``; returns its exit status and whether the limit cut it short."""
    # A background job's shell starts it with SIGINT ignored, and children inherit that: reset
    # it, or the stage could never be asked to stop and keep its rows.
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                               text=True, errors="replace", bufsize=1,
                               preexec_fn=_listen_to_sigint)  # fmt: skip

    def copy() -> None:
        for line in process.stdout:
            log.write(line)
            echo.write(line)
        log.flush()

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    grace = min(GRACE_S, limit_s / 10)
    cut = False
    try:
        process.wait(timeout=max(limit_s - grace, 0.1))
    except subprocess.TimeoutExpired:
        cut = True
        _signal_group(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    _signal_group(process.pid, signal.SIGKILL)  # anything of the group still running
    reader.join(timeout=5)
    return process.returncode, cut


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


# Left out of every archive: writer locks, and a training run's weights and checkpoint (over
# what one file may bring back, and not what a stage is for).
LEFT_OUT = ("/.lock", ".weights.h5", ".optimizer.npz", "/checkpoint.json")


def archive(folder: Path, out: Path, arcname: str | None = None) -> Path:
    """``folder`` packed as ``out/<name>.tar.gz``, less what ``LEFT_OUT`` names."""
    arcname = arcname or folder.name
    target = out / f"{arcname}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(folder, arcname=arcname,
                filter=lambda info: None if info.name.endswith(LEFT_OUT) else info)  # fmt: skip
    return target


def previous_outcome(folder: Path) -> dict[str, Any]:
    """What a carried-in stage folder says about its last run (empty when nothing)."""
    try:
        return json.loads((folder / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def run_stage(stage: Stage, folder: Path, limit_s: float, env: dict[str, str],
              echo: TextIO = sys.stdout) -> Outcome:  # fmt: skip
    """Run ``stage``'s commands in turn within ``limit_s`` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcome = Outcome(stage.name, "finished", limit_s=round(limit_s, 1))
    with open(folder / LOG_FILE, "a", encoding="utf-8") as log:
        for argv in stage.commands(folder, limit_s):
            left = limit_s - (time.monotonic() - started)
            if left < 1:
                outcome.status, outcome.reason = "cut", "its time ran out between commands"
                break
            print(f"$ {' '.join(argv)}", file=log, flush=True)
            code, cut = run_command(argv, left, log, env, echo)
            outcome.returncode = code
            if cut:
                outcome.status, outcome.reason = "cut", f"stopped within its {limit_s:.0f} s limit"
                break
            if code != 0:
                outcome.status = "failed"
                outcome.reason = f"a command exited with status {code} (see {LOG_FILE})"
                break
    outcome.seconds = round(time.monotonic() - started, 1)
    (folder / STAGE_FILE).write_text(json.dumps(asdict(outcome), indent=1), encoding="utf-8")
    return outcome


Runner = Callable[[Stage, Path, float], Outcome]


def run_stages(
    stages: Sequence[Stage],
    budget: Budget,
    work: Path,
    out: Path,
    summary: Summary,
    runner: Runner,
    say: Callable[[str], None],
) -> Summary:
    """Each stage in order, within ``budget``: run (or skip, with a line saying why), then
    archived into ``out`` at once; ``summary`` is rewritten to ``out/stages.json`` after
    each."""
    for stage in stages:
        folder = work / stage.name
        limit = budget.limit_for(stage)
        if not stage.repeat and previous_outcome(folder).get("status") == "finished":
            outcome = Outcome(
                stage.name, "done-earlier", "its folder holds an earlier finished run"
            )
        elif limit < stage.min_s:
            outcome = Outcome(stage.name, "skipped", f"needs at least {stage.min_s:.0f} s; "
                              f"the budget has {limit:.0f} s for it")  # fmt: skip
        else:
            say(f"stage {stage.name}: up to {limit:.0f} s")
            outcome = runner(stage, folder, limit)
        if folder.is_dir():
            outcome.archive = archive(folder, out).name
        say(f"stage {stage.name}: {outcome.status}"
            + (f" after {outcome.seconds:.0f} s" if outcome.seconds is not None else "")
            + (f" ({outcome.reason})" if outcome.reason else ""))  # fmt: skip
        summary.outcomes.append(outcome)
        summary.write(out / "stages.json")
    skipped = summary.names("skipped")
    if skipped:
        say(f"skipped stages: {', '.join(skipped)}")
    return summary
