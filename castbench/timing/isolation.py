"""Running a sweep's configurations: in this process, or in worker processes that a crash, an
out-of-memory kill or a hang cannot take down with the sweep.

``--isolate group`` (the default) starts one worker per model group, so a backbone's
configurations share one built model and its compiled steps; ``config`` starts one worker per
configuration (most isolation, one TensorFlow start and one compile each); ``none`` measures in
this process. A worker sends each row to the parent as soon as it is measured, and only the
parent writes the results folder. When a worker dies, the configuration it had in hand gets an
``error`` or ``oom`` row with the first line of the reason (its whole stderr goes to
``DIR/logs/<key>.log``), and a fresh worker carries on with the rest of the group, so one
failure never poisons the next configuration.

This module is the parent side too, and imports no TensorFlow: a parent that initialised the
device would hold memory its workers need. The worker is ``python -m castbench.timing.isolation``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from castbench.results import ResultsFolder
from castbench.runtime import keras_backend_name
from castbench.timing.config import TimingConfig

ISOLATION_MODES = ("group", "config", "none")
# Fault-injection hook for castbench's own tests, read by workers only (never in-process):
# CASTBENCH_TEST_FAULT="crash:SUBSTR,raise:SUBSTR,hang:SUBSTR" makes a worker SIGKILL itself,
# raise, or hang just before it measures a configuration whose key contains SUBSTR.
FAULT_ENV = "CASTBENCH_TEST_FAULT"
OOM_MARKERS = ("ResourceExhausted", "RESOURCE_EXHAUSTED", "Out of memory", "OutOfMemory",
               "out of memory", "MemoryError", "OOM")  # fmt: skip
POLL_S = 0.5
# A worker's start-up (Python, TensorFlow) is not a configuration's time; it gets this long on
# top of --timeout before the worker counts as hung.
STARTUP_GRACE_S = 120.0

OnStart = Callable[[TimingConfig], None]
OnRow = Callable[[dict[str, Any]], None]
GroupRunner = Callable[[list[TimingConfig], OnStart, OnRow], None]


def config_fields(config: TimingConfig, device: str | None, backend: str | None) -> dict[str, Any]:
    """The fields a row has whatever happened to the measurement."""
    return {
        "key": config.key,
        "backbone": config.backbone,
        "input_size": config.input_size,
        "batch_size": config.batch_size,
        "mode": config.mode,
        "precision": config.precision,
        "backend": backend,
        "device": device,
        "jit_compile": config.jit_compile,
        "head": config.head,
        "weights": config.weights,
        "trainable": config.trainable,
        "steps": config.steps,
        "warmup": config.warmup,
        "n_train": config.n_train,
        "steps_per_epoch": config.steps_per_epoch,
        "runtime": config.runtime,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""


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


def partition(configs: list[TimingConfig], isolate: str) -> list[list[TimingConfig]]:
    """The batches a sweep hands to one runner call: model groups, or single configurations."""
    if isolate == "config":
        return [[config] for config in configs]
    return [list(group) for _, group in itertools.groupby(configs, key=lambda c: c.model_key)]


def drive(
    configs: Iterable[TimingConfig],
    folder: ResultsFolder,
    run_group: GroupRunner,
    *,
    isolate: str = "none",
    resume: bool = False,
    oom_retry: bool = False,
    stream: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Measure every configuration (not already in ``folder`` with ``resume``) through
    ``run_group``, writing each row as it arrives.

    With ``oom_retry``, a configuration that runs out of memory is measured again at half the
    batch size, down to 1, unless the sweep measures that batch size anyway; the smaller row
    carries ``retried_from_batch``.
    """
    configs = list(configs)
    if resume:
        done = folder.finished_keys()
        configs = [c for c in configs if c.key not in done]
    progress = Progress(len(configs), stream)
    planned = {c.key for c in configs} | folder.finished_keys()
    by_key = {c.key: c for c in configs}
    retried_from: dict[str, int] = {}
    retries: list[TimingConfig] = []
    written: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        key = row["key"]
        if key in retried_from:
            row = {**row, "retried_from_batch": retried_from[key]}
        written.append(folder.add(row))
        progress.done(row)
        config = by_key.get(key)
        if oom_retry and row["status"] == "oom" and config and config.batch_size > 1:
            smaller = replace(config, batch_size=config.batch_size // 2)
            if smaller.key not in planned:
                planned.add(smaller.key)
                by_key[smaller.key] = smaller
                retried_from[smaller.key] = retried_from.get(key, config.batch_size)
                retries.append(smaller)
                progress.total += 1

    queue = deque(partition(configs, isolate))
    while queue:
        run_group(queue.popleft(), progress.start, record)
        if retries:  # measured next, in a fresh worker when isolated
            queue.extendleft(reversed(partition(list(retries), isolate)))
            retries.clear()
    return written


# ---------------------------------------------------------------- parent side of the workers


class _EventReader:
    """JSON lines from a worker's event pipe, with a timeout."""

    TIMEOUT = object()

    def __init__(self, stream) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def next(self, timeout: float):
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


def _oom_kills() -> int | None:
    """The cgroup's count of OOM kills (cgroup v2), or None where it cannot be read."""
    try:
        for line in open("/sys/fs/cgroup/memory.events", encoding="ascii"):
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class Workers:
    """Runs batches of configurations in fresh worker processes until each has a row."""

    def __init__(
        self,
        timeout: float | None = None,
        argv: list[str] | None = None,
        on_environment: Callable[[dict[str, Any]], None] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.timeout = timeout
        self.log_dir = log_dir  # where a failed worker's stderr is kept
        self.argv = argv or []
        self.on_environment = on_environment
        self.device: str | None = None
        self.backend: str | None = keras_backend_name()
        self.started = 0
        self.have_environment = False

    def __call__(self, batch: list[TimingConfig], on_start: OnStart, on_row: OnRow) -> None:
        pending = list(batch)
        while pending:
            self._one_worker(pending, on_start, on_row)

    def _failure(self, config: TimingConfig, status: str, message: str) -> dict[str, Any]:
        return {**config_fields(config, self.device, self.backend), "status": status,
                "error": message}  # fmt: skip

    def _one_worker(self, pending: list[TimingConfig], on_start: OnStart, on_row: OnRow) -> None:
        """One worker's life: it measures from the front of ``pending`` until done or dead."""
        first = self.on_environment is not None and not self.have_environment
        request = {"configs": [c.as_dict() for c in pending], "argv": self.argv,
                   "environment": first}  # fmt: skip
        self.started += 1
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        oom_kills = _oom_kills()
        peak_memory_pct = 0.0
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen([sys.executable, "-m", "castbench.timing.isolation"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                env=env)  # fmt: skip
        events = _EventReader(proc.stdout)
        in_hand_started = False
        reason: tuple[str, str] | None = None
        try:
            try:
                proc.stdin.write((json.dumps(request) + "\n").encode())
                proc.stdin.flush()
            except OSError:  # the worker died at once; its end of file follows
                pass
            deadline = None
            if self.timeout is not None:
                deadline = time.monotonic() + self.timeout + STARTUP_GRACE_S
            while pending:
                if deadline is not None and time.monotonic() >= deadline:
                    proc.kill()
                    reason = ("error", f"timed out after {self.timeout:g} s")
                    break
                wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
                event = events.next(max(wait, 0.0))
                peak_memory_pct = max(peak_memory_pct, _memory_percent())
                if event is None:
                    break
                if event is _EventReader.TIMEOUT:
                    continue
                kind = event.get("event")
                if kind == "ready":
                    self.device = event.get("device", self.device)
                    self.backend = event.get("backend", self.backend)
                    if event.get("environment") and self.on_environment:
                        self.have_environment = True
                        self.on_environment(event["environment"])
                elif kind == "start" and event.get("key") == pending[0].key:
                    if not in_hand_started:
                        on_start(pending[0])
                        in_hand_started = True
                    continue  # a start does not reset the clock; build time counts
                elif kind == "row":
                    config = pending.pop(0)
                    if not in_hand_started:
                        on_start(config)
                    in_hand_started = False
                    on_row({**event["row"], "key": config.key})
                if deadline is not None:
                    deadline = time.monotonic() + self.timeout
            if reason is None and pending:  # the event pipe closed: the worker is ending
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        except BaseException:
            proc.kill()
            raise
        finally:
            events.close()
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            proc.wait()
        if pending:
            config = pending.pop(0)
            if reason is None:
                reason = _death_reason(proc.returncode, _tail(log), oom_kills, peak_memory_pct)
            self._keep_log(log, config)
            if not in_hand_started:
                on_start(config)
            on_row(self._failure(config, *reason))
        log.close()

    def _keep_log(self, log, config: TimingConfig) -> None:
        """Save a failed worker's stderr as LOG_DIR/<configuration key>.log."""
        if self.log_dir is None:
            return
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log.seek(0)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.key)
            (self.log_dir / f"{name}.log").write_bytes(log.read())
        except OSError:
            pass  # a log is a courtesy; the row is what matters


def _memory_percent() -> float:
    try:
        import psutil

        return psutil.virtual_memory().percent
    except Exception:
        return 0.0


def _tail(log) -> str:
    """The last non-empty line a worker wrote to stderr."""
    log.seek(0, os.SEEK_END)
    log.seek(max(log.tell() - 8192, 0))
    lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _death_reason(
    returncode: int, last_line: str, oom_kills_before: int | None, peak_memory_pct: float
) -> tuple[str, str]:
    """(status, message) for a worker that ended with a configuration in hand."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        after = _oom_kills()
        oom_killed = (after is not None and oom_kills_before is not None
                      and after > oom_kills_before) or peak_memory_pct >= 95  # fmt: skip
        if returncode == -signal.SIGKILL and oom_killed:
            return "oom", "worker killed by SIGKILL (out of memory: the kernel's OOM killer)"
        return "error", f"worker killed by {name}" + (f": {last_line}" if last_line else "")
    text = f"worker exited with status {returncode}" + (f": {last_line}" if last_line else "")
    if returncode == 0:
        text = "worker exited before measuring this configuration"
    status = "oom" if any(marker in last_line for marker in OOM_MARKERS) else "error"
    return status, first_line(text)


def light_metadata(argv: list[str]) -> dict[str, Any]:
    """Run metadata the parent can give without starting TensorFlow; the first worker adds
    versions and the device."""
    import platform
    import shlex
    import socket

    from castbench import __version__, environment

    return {
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["castbench", *argv]),
        "castbench": __version__,
        "commit": environment.git_commit(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": keras_backend_name(),
    }


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
    """A sweep whose measurements run in worker processes (``isolate``: group or config).

    ``timeout`` limits each configuration: from the worker's start-up (which has
    ``STARTUP_GRACE_S`` more) through its model build and the first configuration's steps, then
    each further configuration's steps. ``on_environment`` gets a worker's environment metadata
    (versions, device) once, which the parent does not probe.
    """
    if isolate not in ("group", "config"):
        raise ValueError(f"isolate must be group or config, got {isolate!r}")
    workers = Workers(timeout=timeout, argv=argv, on_environment=on_environment,
                      log_dir=folder.path / "logs")  # fmt: skip
    return drive(configs, folder, workers, isolate=isolate, resume=resume, oom_retry=oom_retry,
                 stream=stream)  # fmt: skip


# ---------------------------------------------------------------------------- the worker


def _inject_fault(key: str) -> None:
    """Fault-injection hook for tests only; see FAULT_ENV."""
    for item in os.environ.get(FAULT_ENV, "").split(","):
        kind, _, needle = item.partition(":")
        if not needle or needle not in key:
            continue
        if kind == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "raise":
            raise RuntimeError(f"injected fault before measuring {key}")
        elif kind == "hang":
            time.sleep(10**6)


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def worker_main() -> int:
    """Measure the configurations the parent sends on stdin; events go to stdout, one JSON
    object a line; anything else the process prints goes to stderr."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    request = json.loads(sys.stdin.readline())

    def orphaned() -> None:  # the parent keeps stdin open while it lives
        sys.stdin.read()
        os._exit(70)

    threading.Thread(target=orphaned, daemon=True).start()

    def send(event: dict[str, Any]) -> None:
        channel.write(json.dumps(event, default=_jsonable) + "\n")
        channel.flush()

    from castbench.runtime import start_quietly

    start_quietly()
    from castbench import environment
    from castbench.timing.sweep import measure_group

    ready: dict[str, Any] = {"event": "ready", "pid": os.getpid()}
    if request.get("environment"):
        ready["environment"] = environment.collect(request.get("argv", []))
        device = ready["environment"]["device"]
    else:
        device = environment.device_name()
    ready.update(device=device, backend=keras_backend_name())
    send(ready)

    def on_start(config: TimingConfig) -> None:
        send({"event": "start", "key": config.key})
        _inject_fault(config.key)

    configs = [TimingConfig(**fields) for fields in request["configs"]]
    measure_group(configs, device, on_start, lambda row: send({"event": "row", "row": row}))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
