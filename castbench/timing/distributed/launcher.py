"""``--workers N``: N local cluster workers on loopback, each its own process with its own
``TF_CONFIG`` (worker 0 is the chief). Each measures the same configurations into its own side
folder (``OUT/workers/worker-<i>``); the chief's rows are copied into OUT.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from castbench.errors import UsageError, first_line
from castbench.results import ResultsFolder, read_rows, row_header
from castbench.runtime import CPU_REPLICAS_ENV
from castbench.timing.config import TimingConfig

WORKERS_FOLDER = "workers"
WORKER_TIMEOUT_S = 600  # per configuration, when --timeout is not given
COMMAND = [sys.executable, "-m", "castbench.timing.worker", "cluster"]


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 just now (held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.bind(("127.0.0.1", 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def local_tf_configs(workers: int) -> list[dict]:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    return [{"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
            for index in range(workers)]  # fmt: skip


def _start(configs: list[TimingConfig], side: Path, workers: int) -> list[subprocess.Popen]:
    """Start the cluster's processes; each writes its log to ``side/worker-<i>/worker.log``."""
    procs = []
    for index, tf_conf in enumerate(local_tf_configs(workers)):
        out = side / f"worker-{index}"
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_conf)}
        env.pop(CPU_REPLICAS_ENV, None)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        request = {"configs": [c.as_dict() for c in configs], "out": str(out)}
        with open(out / "worker.log", "wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(COMMAND, stdin=subprocess.PIPE, stdout=log,
                                    stderr=subprocess.STDOUT, env=env)  # fmt: skip
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.close()
        procs.append(proc)
    return procs


def _exit_failure(procs: list[subprocess.Popen]) -> str | None:
    bad = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
    return f"worker {bad[0]} exited with status {procs[bad[0]].returncode}" if bad else None


def _wait(procs: list[subprocess.Popen], limit: float) -> str | None:
    """Wait for every worker; the reason when one fails or the cluster overruns ``limit``."""
    started = time.monotonic()
    failure = None
    try:
        while any(p.poll() is None for p in procs):
            failure = _exit_failure(procs)  # the others would wait for it in a collective
            if failure is None and time.monotonic() - started > limit:
                failure = f"workers timed out after {limit:g} s"
            if failure:
                break
            time.sleep(0.5)
        else:
            failure = _exit_failure(procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return failure


def run_local_workers(
    configs: list[TimingConfig],
    folder: ResultsFolder,
    workers: int,
    timeout: float | None = None,
    stream: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Measure ``configs`` (strategy multiworker) in ``workers`` local processes; the chief's
    rows go into ``folder``, every worker's into ``folder/workers/worker-<i>``."""
    if not configs:
        return []
    side = Path(folder.path) / WORKERS_FOLDER
    # Collective steps wait for every worker: a worker that stalls would hang the run for good.
    limit = (timeout or WORKER_TIMEOUT_S) * len(configs) + 120
    procs = _start(configs, side, workers)
    print(f"multiworker: {workers} local workers on 127.0.0.1 measuring {len(configs)} "
          f"configurations; logs in {side}", file=stream)  # fmt: skip
    failure = _wait(procs, limit)
    if failure:
        log = (side / "worker-0" / "worker.log").read_text(errors="replace").splitlines()
        tail = [line for line in log if line.strip()]
        failure += f": {tail[-1].strip()}" if tail else ""
    try:
        chief_rows = {r["key"]: r for r in read_rows(side / "worker-0")}
    except UsageError:
        chief_rows = {}
    written = []
    for config in configs:
        row = chief_rows.get(config.key)
        if row is None:
            row = {**row_header(config, None, "tensorflow"), "status": "error",
                   "error": first_line(failure or "the chief wrote no row")}  # fmt: skip
        written.append(folder.add(row))
    return written
