"""The entry point of every process that castbench timing starts to measure:
``python -m castbench.timing.worker pool`` for the process pool of an isolated sweep
(:mod:`castbench.timing.pool`) and ``python -m castbench.timing.worker cluster`` for one local
``MultiWorkerMirroredStrategy`` worker (:mod:`castbench.timing.distributed.launcher`). Both read
one JSON request on stdin; only these processes import TensorFlow, Keras or JAX.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from castbench.runtime import keras_backend_name, start_quietly
from castbench.timing.config import TimingConfig

# Fault-injection hook for castbench's own tests, read by pool processes only:
# CASTBENCH_TEST_FAULT="crash:SUBSTR,raise:SUBSTR,hang:SUBSTR" makes a process SIGKILL itself,
# raise, or hang just before it measures a configuration whose key contains SUBSTR.
FAULT_ENV = "CASTBENCH_TEST_FAULT"


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


def serve_pool() -> int:
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

    start_quietly()
    from castbench import environment
    from castbench.timing.peak import with_device_peaks
    from castbench.timing.sweep import measure_group

    ready: dict[str, Any] = {"event": "ready", "pid": os.getpid()}
    if request.get("environment"):
        ready["environment"] = with_device_peaks(environment.collect(request.get("argv", [])))
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


def serve_cluster() -> int:
    """One local cluster worker: MultiWorkerMirroredStrategy first, then the sweep into its
    own folder."""
    request = json.loads(sys.stdin.readline())
    start_quietly()
    from castbench.results import ResultsFolder
    from castbench.timing.distributed.strategy import is_chief, prepare_multiworker, tf_config
    from castbench.timing.sweep import run_sweep

    prepare_multiworker()
    chief = is_chief(tf_config())
    configs = []
    for fields in request["configs"]:
        if fields.get("profile") and not chief:  # every worker traces: steps are collective
            index = tf_config()["task"].get("index", 0)
            fields = {**fields, "profile": str(Path(fields["profile"]) / f"worker-{index}")}
        configs.append(TimingConfig(**fields))
    run_sweep(configs, ResultsFolder(request["out"]), stream=sys.stderr)
    return 0


ROLES = {"pool": serve_pool, "cluster": serve_cluster}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ROLES:
        sys.exit(f"usage: python -m castbench.timing.worker {{{'|'.join(ROLES)}}}")
    sys.exit(ROLES[sys.argv[1]]())
