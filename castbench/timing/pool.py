"""Measuring in separate processes that a crash, an out-of-memory kill or a hang cannot take
down with the sweep: the parent's side of those processes.

``--isolate group`` (the default) starts one process per model group, so a backbone's
configurations share one built model and its compiled steps; ``config`` starts one process per
configuration (most isolation, one framework start and one compile each). A process sends each
row to the parent as soon as it is measured, and only the parent writes the results folder.
When a process dies, the configuration it had in hand gets an ``error`` or ``oom`` row with the
first line of the reason (its whole stderr goes to ``DIR/logs/<key>.log``), and a fresh process
carries on with the rest of the group, so one failure never poisons the next configuration.

This side imports no framework: a parent that initialised the device would hold memory its
processes need. The processes run :mod:`castbench.timing.worker`.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from castbench.errors import failure_status, first_line
from castbench.results import ResultsFolder, row_header
from castbench.runtime import keras_backend_name
from castbench.timing.config import TimingConfig
from castbench.timing.schedule import OnRow, OnStart, drive

POLL_S = 0.5
# A process's start-up (Python, TensorFlow) is not a configuration's time; it gets this long on
# top of --timeout before the process counts as hung.
STARTUP_GRACE_S = 120.0
COMMAND = [sys.executable, "-m", "castbench.timing.worker", "pool"]


class _EventReader:
    """JSON lines from a process's event pipe, with a timeout."""

    TIMEOUT = object()

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def next(self, timeout: float) -> Any:
        """The next event, ``TIMEOUT`` when none came within ``timeout``, None at end of file."""
        while b"\n" not in self.buffer:
            if not self.selector.select(timeout):
                return self.TIMEOUT
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return self.TIMEOUT  # not an event; the caller polls again

    def close(self) -> None:
        self.selector.close()


@dataclass
class _Life:
    """What the parent learns while one process runs."""

    in_hand_started: bool = False  # the configuration at the front has been announced
    peak_memory_pct: float = 0.0
    reason: tuple[str, str] | None = None  # (status, message) when the parent ended it


class ProcessPool:
    """Runs batches of configurations in fresh processes until each has a row."""

    def __init__(
        self,
        timeout: float | None = None,
        argv: list[str] | None = None,
        on_environment: Callable[[dict[str, Any]], None] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.timeout = timeout
        self.log_dir = log_dir  # where a failed process's stderr is kept
        self.argv = argv or []
        self.on_environment = on_environment
        self.device: str | None = None
        self.backend: str | None = keras_backend_name()
        self.started = 0
        self.have_environment = False

    def __call__(self, batch: list[TimingConfig], on_start: OnStart, on_row: OnRow) -> None:
        pending = list(batch)
        while pending:
            self._one_process(pending, on_start, on_row)

    def _one_process(self, pending: list[TimingConfig], on_start: OnStart, on_row: OnRow) -> None:
        """One process's life: it measures from the front of ``pending`` until done or dead."""
        oom_kills = _oom_kills()
        log = tempfile.TemporaryFile()
        proc = self._spawn(pending, log)
        events = _EventReader(proc.stdout)
        life = _Life()
        try:
            self._follow(proc, events, pending, on_start, on_row, life)
            if life.reason is None and pending:  # the event pipe closed: the process is ending
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        except BaseException:
            proc.kill()
            raise
        finally:
            events.close()
            _close(proc)
        if pending:
            config = pending.pop(0)
            reason = life.reason or _death_reason(
                proc.returncode, _tail(log), oom_kills, life.peak_memory_pct
            )
            self._keep_log(log, config)
            if not life.in_hand_started:
                on_start(config)
            on_row({**row_header(config, self.device, self.backend), "status": reason[0],
                    "error": reason[1]})  # fmt: skip
        log.close()

    def _spawn(self, pending: list[TimingConfig], log: IO[bytes]) -> subprocess.Popen:
        first = self.on_environment is not None and not self.have_environment
        request = {"configs": [c.as_dict() for c in pending], "argv": self.argv,
                   "environment": first}  # fmt: skip
        self.started += 1
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        proc = subprocess.Popen(COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log, env=env)  # fmt: skip
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
        except OSError:  # the process died at once; its end of file follows
            pass
        return proc

    def _follow(
        self,
        proc: subprocess.Popen,
        events: _EventReader,
        pending: list[TimingConfig],
        on_start: OnStart,
        on_row: OnRow,
        life: _Life,
    ) -> None:
        """Pass the process's events on until ``pending`` is empty, the process's output ends,
        or it overruns the time limit (then it is killed and ``life.reason`` says so)."""
        deadline = None
        if self.timeout is not None:
            deadline = time.monotonic() + self.timeout + STARTUP_GRACE_S
        while pending:
            if deadline is not None and time.monotonic() >= deadline:
                proc.kill()
                life.reason = ("error", f"timed out after {self.timeout:g} s")
                return
            wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            event = events.next(max(wait, 0.0))
            life.peak_memory_pct = max(life.peak_memory_pct, _memory_percent())
            if event is None:
                return
            if event is _EventReader.TIMEOUT:
                continue
            kind = event.get("event")
            if kind == "ready":
                self._ready(event)
            elif kind == "start" and event.get("key") == pending[0].key:
                if not life.in_hand_started:
                    on_start(pending[0])
                    life.in_hand_started = True
                continue  # a start does not reset the clock; build time counts
            elif kind == "row":
                config = pending.pop(0)
                if not life.in_hand_started:
                    on_start(config)
                life.in_hand_started = False
                on_row({**event["row"], "key": config.key})
            if deadline is not None:
                deadline = time.monotonic() + self.timeout

    def _ready(self, event: dict[str, Any]) -> None:
        self.device = event.get("device", self.device)
        self.backend = event.get("backend", self.backend)
        if event.get("environment") and self.on_environment:
            self.have_environment = True
            self.on_environment(event["environment"])

    def _keep_log(self, log: IO[bytes], config: TimingConfig) -> None:
        """Save a failed process's stderr as LOG_DIR/<configuration key>.log."""
        if self.log_dir is None:
            return
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log.seek(0)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.key)
            (self.log_dir / f"{name}.log").write_bytes(log.read())
        except OSError:
            pass  # a log is a courtesy; the row is what matters


def _close(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass
    proc.wait()


def _oom_kills() -> int | None:
    """The cgroup's count of OOM kills (cgroup v2), or None where it cannot be read."""
    try:
        for line in open("/sys/fs/cgroup/memory.events", encoding="ascii"):
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _memory_percent() -> float:
    try:
        import psutil

        return psutil.virtual_memory().percent
    except Exception:
        return 0.0


def _tail(log: IO[bytes]) -> str:
    """The last non-empty line a process wrote to stderr."""
    log.seek(0, os.SEEK_END)
    log.seek(max(log.tell() - 8192, 0))
    lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _death_reason(
    returncode: int, last_line: str, oom_kills_before: int | None, peak_memory_pct: float
) -> tuple[str, str]:
    """(status, message) for a process that ended with a configuration in hand."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        after = _oom_kills()
        oom_killed = (after is not None and oom_kills_before is not None
                      and after > oom_kills_before) or peak_memory_pct >= 95  # fmt: skip
        if returncode == -signal.SIGKILL and oom_killed:
            return "oom", "process killed by SIGKILL (out of memory: the kernel's OOM killer)"
        return "error", f"process killed by {name}" + (f": {last_line}" if last_line else "")
    text = f"process exited with status {returncode}" + (f": {last_line}" if last_line else "")
    if returncode == 0:
        text = "process exited before measuring this configuration"
    return failure_status(last_line), first_line(text)


def run_isolated(
    configs: Iterable[TimingConfig],
    folder: ResultsFolder,
    *,
    isolate: str = "group",
    timeout: float | None = None,
    resume: bool = False,
    oom_retry: bool = False,
    stream: TextIO = sys.stderr,
    argv: list[str] | None = None,
    on_environment: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """A sweep whose measurements run in separate processes (``isolate``: group or config).

    ``timeout`` limits each configuration: from the process's start-up (which has
    ``STARTUP_GRACE_S`` more) through its model build and the first configuration's steps, then
    each further configuration's steps. ``on_environment`` gets a process's environment
    metadata (versions, device) once, which the parent does not probe.
    """
    if isolate not in ("group", "config"):
        raise ValueError(f"isolate must be group or config, got {isolate!r}")
    pool = ProcessPool(timeout=timeout, argv=argv, on_environment=on_environment,
                       log_dir=folder.path / "logs")  # fmt: skip
    return drive(configs, folder, pool, isolate=isolate, resume=resume, oom_retry=oom_retry,
                 stream=stream)  # fmt: skip
