"""The cluster ``TF_CONFIG`` describes, and the ``tf.distribute`` strategies a configuration
names, made once per process."""

from __future__ import annotations

import json
import os
from typing import Any

from castbench.errors import UsageError

_strategies: dict[tuple, Any] = {}


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
