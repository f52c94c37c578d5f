"""Timing under ``tf.distribute``: one process over several devices (``mirrored``), or several
processes (``multiworker``, ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``).

``--batch`` is the per-replica batch; a distributed step trains (or predicts) on
``replicas x batch`` images, each replica on its own slice. Keras' ``train_on_batch`` under a
strategy hands the *same* whole batch to every replica (``strategy.run`` on a plain tensor), so
it is not a distributed step: the runner here builds one per-replica batch on each replica's
device (``distribute_values_from_function``) and calls the model's own compiled
``train_function`` / ``predict_function`` on it, then reads the result back to the host.

On a machine without GPUs, ``mirrored`` splits the CPU into logical devices (``--replicas N``).
That split, and ``MultiWorkerMirroredStrategy`` itself, must happen before TensorFlow
initialises its devices, so the command line arranges both at the start of a process:
``CASTBENCH_CPU_REPLICAS`` tells a worker process (and :func:`castbench.runtime.start_quietly`)
how many logical CPUs to make.

``castbench timing --workers N`` starts N local worker processes on loopback, each with its own
``TF_CONFIG``; worker 0 is the chief. Each measures the same configurations into its own side
folder (``OUT/workers/worker-<i>``); the chief's rows are copied into OUT.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from castbench.errors import UsageError
from castbench.timing.config import STRATEGIES

CPU_REPLICAS_ENV = "CASTBENCH_CPU_REPLICAS"
WORKERS_FOLDER = "workers"
_strategies: dict[tuple, Any] = {}


# ------------------------------------------------------------------- checks, before TF starts


def check_backend(strategies: Iterable[str], backend: str) -> None:
    """Strategies other than ``default`` are ``tf.distribute``: TensorFlow only."""
    others = sorted({s for s in strategies if s != "default"})
    if others and backend != "tensorflow":
        raise UsageError(
            f"--strategy {' '.join(others)} needs the TensorFlow backend (tf.distribute); "
            f"KERAS_BACKEND is {backend}"
        )


def tf_config() -> dict | None:
    """The parsed ``TF_CONFIG``, None when unset; a UsageError when it is not valid JSON."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"TF_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("cluster"), dict):
        raise UsageError("TF_CONFIG needs a 'cluster' (and a 'task')")
    return value


def cluster_size(config: dict) -> int:
    cluster = config["cluster"]
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))


def is_chief(config: dict | None) -> bool:
    """Worker 0 is the chief unless the cluster names a ``chief`` task."""
    if not config:
        return True
    task = config.get("task", {})
    if "chief" in config["cluster"]:
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


@dataclass(frozen=True)
class Plan:
    """What ``--strategy/--replicas/--workers/--profile`` ask for, checked before TF starts."""

    strategies: tuple[str, ...]
    replicas: int | None = None
    workers: int | None = None
    launch_workers: bool = False  # --workers N: start N local worker processes
    profile: str | None = None

    @property
    def variants(self) -> list[dict[str, Any]]:
        """The strategy fields of each configuration variant, baselines first."""
        fields = {
            "default": {"strategy": "default"},
            "mirrored": {"strategy": "mirrored", "replicas": self.replicas},
            "multiworker": {"strategy": "multiworker", "workers": self.workers},
        }
        return [fields[name] for name in STRATEGIES if name in self.strategies]  # fmt: skip

    @property
    def in_process_multiworker(self) -> bool:
        """This process is one worker of a TF_CONFIG cluster: it measures in-process."""
        return "multiworker" in self.strategies and not self.launch_workers

    def split(self, configs: list) -> tuple[list, list]:
        """(configurations measured here, those the local workers measure)."""
        if not self.launch_workers:
            return list(configs), []
        here = [c for c in configs if c.strategy != "multiworker"]
        return here, [c for c in configs if c.strategy == "multiworker"]

    @contextlib.contextmanager
    def process_setup(self, isolate: str) -> Iterator[None]:
        """Logical CPUs (for worker processes through the environment, or here) and this
        process's MultiWorkerMirroredStrategy, before anything starts TF's devices."""
        saved = os.environ.get(CPU_REPLICAS_ENV)
        try:
            if "mirrored" in self.strategies and (self.replicas or 1) > 1:
                os.environ[CPU_REPLICAS_ENV] = str(self.replicas)
                if isolate == "none":
                    split_cpu(self.replicas)
            if self.in_process_multiworker:
                prepare_multiworker()
            yield
        finally:
            if saved is None:
                os.environ.pop(CPU_REPLICAS_ENV, None)
            else:
                os.environ[CPU_REPLICAS_ENV] = saved


def plan(
    strategies: Iterable[str],
    replicas: int | None,
    workers: int | None,
    profile: str | Path | None,
    backend: str,
) -> Plan:
    """Check the command line's distribution and profiling options (UsageError if wrong)."""
    strategies = tuple(dict.fromkeys(strategies or ["default"]))
    check_backend(strategies, backend)
    for name, value in (("replicas", replicas), ("workers", workers)):
        if value is not None and value <= 0:
            raise UsageError(f"--{name} must be a positive whole number, got {value}")
    if replicas is not None and "mirrored" not in strategies:
        raise UsageError("--replicas needs --strategy mirrored")
    if workers is not None and "multiworker" not in strategies:
        raise UsageError("--workers needs --strategy multiworker")
    launch = False
    if "multiworker" in strategies:
        if workers:
            launch = True
        else:
            config = tf_config()
            if config is None:
                raise UsageError("--strategy multiworker needs TF_CONFIG (a cluster) or "
                                 "--workers N (N local workers on 127.0.0.1)")  # fmt: skip
            workers = cluster_size(config)
    folder = None
    if profile is not None:
        from castbench.timing.profiling import check_writable

        folder = str(check_writable(profile))
    return Plan(strategies, replicas, workers, launch, folder)


# ------------------------------------------------------------------------ process set-up


def split_cpu(count: int) -> None:
    """Make ``count`` logical CPU devices (no-op with GPUs or for one); before TF starts."""
    if count <= 1:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return  # mirrored uses the GPUs
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:  # TensorFlow has already initialised its devices
        have = len(tf.config.list_logical_devices("CPU"))
        if have < count:
            raise UsageError(
                f"cannot split the CPU into {count} logical devices: TensorFlow has already "
                f"started here with {have}; measure in worker processes (--isolate group)"
            ) from None


def split_cpu_from_environment() -> None:
    """Apply ``CASTBENCH_CPU_REPLICAS`` (set by the command line for its workers)."""
    text = os.environ.get(CPU_REPLICAS_ENV, "").strip()
    if text.isdigit():
        split_cpu(int(text))


def prepare_multiworker() -> Any:
    """Create this process's ``MultiWorkerMirroredStrategy`` (once, before TF starts)."""
    key = ("multiworker",)
    if key not in _strategies:
        import tensorflow as tf

        if tf_config() is None:
            raise UsageError("--strategy multiworker needs TF_CONFIG, or --workers N to start "
                             "N local workers")  # fmt: skip
        try:
            _strategies[key] = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before TensorFlow starts its "
                f"devices: {str(exc).splitlines()[0]}"
            ) from None
    return _strategies[key]


def strategy_for(config) -> Any:
    """The ``tf.distribute`` strategy a configuration names (cached per process)."""
    if config.strategy == "multiworker":
        return prepare_multiworker()
    if config.strategy != "mirrored":
        raise ValueError(f"no distribution strategy for {config.strategy!r}")
    key = ("mirrored", config.replicas)
    if key not in _strategies:
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        if config.replicas:
            if len(devices) < config.replicas:
                raise RuntimeError(
                    f"mirrored with {config.replicas} replicas needs {config.replicas} devices; "
                    f"this process has {len(devices)} ({', '.join(devices)})"
                )
            devices = devices[: config.replicas]
        _strategies[key] = tf.distribute.MirroredStrategy(devices)
    return _strategies[key]


# ---------------------------------------------------------------------------- the step


def distributed_step(model, config, seed: int = 0) -> tuple[Callable[[], Any], int]:
    """(one synchronous distributed step, replicas in sync) for a model built in a scope."""
    import tensorflow as tf

    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    shape = (config.batch_size, config.input_size, config.input_size, 3)

    def batch(ctx) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed + ctx.replica_id_in_sync_group)
        images = rng.uniform(-1, 1, shape).astype("float32")
        labels = rng.integers(0, 2, (config.batch_size, 1)).astype("float32")
        return images, labels

    # each replica's slice is made once, on that replica's device
    images = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(batch(ctx)[0])
    )
    labels = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(batch(ctx)[1])
    )

    if config.mode == "infer":
        model.make_predict_function()

        def infer() -> np.ndarray:
            return np.asarray(model.predict_function([(images,)]))

        return infer, replicas

    class _Context:
        replica_id_in_sync_group = 0

    local_images, local_labels = batch(_Context())
    builder = getattr(model, "_maybe_symbolic_build", None)
    if builder is not None:  # builds optimizer state in the scope, as train_on_batch does
        builder(data_batch=(local_images, local_labels, None))
    # Keras' own train_function reduces the logs with strategy.reduce("MEAN", axis=0), which
    # fails on scalar logs under MultiWorkerMirroredStrategy; this is the same step (Keras'
    # train_step on each replica, compiled as Keras compiles it) with the logs reduced whole.
    jit = bool(model.jit_compile)

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def one_step(images, labels):
        logs = strategy.run(model.train_step, args=((images, labels, None),))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    def train() -> dict[str, float]:
        model.reset_metrics()
        logs = one_step(images, labels)
        return {name: float(np.asarray(value)) for name, value in logs.items()}

    return train, replicas


# ------------------------------------------------------------------------ scaling


def baseline_key(key: str) -> str | None:
    """The key of the one-replica (default strategy) twin of a distributed configuration."""
    head, _, last = key.rpartition("|")
    return head if last.split(":")[0] in STRATEGIES[1:] else None


def fill_scaling_efficiency(folder) -> int:
    """Add ``scaling_efficiency`` to each distributed ok row whose one-replica baseline is in
    ``folder``: global images/s over (replicas x baseline images/s). Returns rows updated."""
    rows = {row["key"]: row for row in folder.rows}
    updated = 0
    for row in list(rows.values()):
        base = rows.get(baseline_key(row["key"]) or "")
        if row["status"] != "ok" or not base or base["status"] != "ok":
            continue
        if not row.get("replicas") or not base.get("images_per_s"):
            continue
        efficiency = row["images_per_s"] / (row["replicas"] * base["images_per_s"])
        if row.get("scaling_efficiency") != efficiency:
            folder.add({**row, "scaling_efficiency": round(efficiency, 4)})
            updated += 1
    return updated


# ------------------------------------------------------------------ local multi-worker


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


WORKER_TIMEOUT_S = 600  # per configuration, when --timeout is not given


def run_local_workers(
    configs: list,
    folder,
    workers: int,
    timeout: float | None = None,
    stream: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Measure ``configs`` (strategy multiworker) in ``workers`` local processes; the chief's
    rows go into ``folder``, every worker's into ``folder/workers/worker-<i>``."""
    from castbench.results import read_rows
    from castbench.timing.isolation import config_fields
    from castbench.timing.isolation import first_line as _first_line

    if not configs:
        return []
    side = Path(folder.path) / WORKERS_FOLDER
    # Collective steps wait for every worker: a worker that stalls would hang the run for good.
    limit = (timeout or WORKER_TIMEOUT_S) * len(configs) + 120
    procs, logs = [], []
    for index, tf_conf in enumerate(local_tf_configs(workers)):
        out = side / f"worker-{index}"
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_conf)}
        env.pop(CPU_REPLICAS_ENV, None)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        request = {"configs": [c.as_dict() for c in configs], "out": str(out)}
        log = open(out / "worker.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "castbench.timing.distributed"],
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                env=env)  # fmt: skip
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.close()
        procs.append(proc)
        logs.append((log, out / "worker.log"))
    print(f"multiworker: {workers} local workers on 127.0.0.1 measuring {len(configs)} "
          f"configurations; logs in {side}", file=stream)  # fmt: skip
    started = time.monotonic()
    failure = None
    try:
        while any(p.poll() is None for p in procs):
            bad = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
            if bad:  # the others would wait for it in a collective for ever
                failure = f"worker {bad[0]} exited with status {procs[bad[0]].returncode}"
                break
            if limit is not None and time.monotonic() - started > limit:
                failure = f"workers timed out after {limit:g} s"
                break
            time.sleep(0.5)
        else:
            bad = [i for i, p in enumerate(procs) if p.returncode != 0]
            if bad:
                failure = f"worker {bad[0]} exited with status {procs[bad[0]].returncode}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for log, _ in logs:
            log.close()
    if failure:
        tail = [line for line in logs[0][1].read_text(errors="replace").splitlines()
                if line.strip()]  # fmt: skip
        failure += f": {tail[-1].strip()}" if tail else ""
    try:
        chief_rows = {r["key"]: r for r in read_rows(side / "worker-0")}
    except UsageError:
        chief_rows = {}
    written = []
    for config in configs:
        row = chief_rows.get(config.key)
        if row is None:
            row = {**config_fields(config, None, "tensorflow"), "status": "error",
                   "error": _first_line(failure or "the chief wrote no row")}  # fmt: skip
        written.append(folder.add(row))
    return written


def worker_main() -> int:
    """One local worker: MultiWorkerMirroredStrategy first, then the sweep into its folder."""
    request = json.loads(sys.stdin.readline())
    from castbench.runtime import start_quietly

    start_quietly()
    prepare_multiworker()
    from castbench.results import ResultsFolder
    from castbench.timing.config import TimingConfig
    from castbench.timing.sweep import run_sweep

    chief = is_chief(tf_config())
    configs = []
    for fields in request["configs"]:
        if fields.get("profile") and not chief:  # every worker traces: steps are collective
            index = tf_config()["task"].get("index", 0)
            fields = {**fields, "profile": str(Path(fields["profile"]) / f"worker-{index}")}
        configs.append(TimingConfig(**fields))
    run_sweep(configs, ResultsFolder(request["out"]), stream=sys.stderr)
    return 0


def expected_replicas(strategy: str, replicas: int | None, workers: int | None) -> int | None:
    """Replicas a configuration will have when that is known before TF starts."""
    if strategy == "default":
        return 1
    if strategy == "multiworker":
        return workers
    return replicas


def steps_per_epoch(n_train: int, global_batch: int) -> int:
    return math.ceil(n_train / global_batch)


if __name__ == "__main__":
    sys.exit(worker_main())
