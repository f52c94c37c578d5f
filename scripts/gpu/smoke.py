"""What a machine offers castbench, written as one JSON file before anything slow runs: the
Python and package versions, the devices JAX sees, nvidia-smi's view of the cards, JAX's
default matmul precision and XLA flags, and whether castbench's timing engine imports under
the Keras backend in use. Every probe that fails is recorded as its error, not raised.

    python scripts/gpu/smoke.py environment.json
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

PACKAGES = ("castbench", "keras", "jax", "jaxlib", "numpy", "optree", "namex", "h5py", "torch",
            "timm", "tensorflow", "nvidia-ml-py", "pandas", "matplotlib")  # fmt: skip


def versions() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def jax_view() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {
        "default_backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.device_kind}" for d in devices],
        # None is JAX's default: TF32 for float32 matmuls and convolutions on Ampere and Hopper
        "default_matmul_precision": jax.config.jax_default_matmul_precision,
    }


def nvidia_smi() -> str:
    query = "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit"
    done = subprocess.run(["nvidia-smi", query, "--format=csv"], capture_output=True,
                          text=True, timeout=20)  # fmt: skip
    return (done.stdout or done.stderr).strip()


def castbench_engine() -> dict[str, Any]:
    from castbench import environment
    from castbench.runtime import start_quietly

    start_quietly()
    import castbench.timing.engine  # noqa: F401  (what every timing process imports)

    return {"device": environment.device_name(), "gpus": environment.gpu_info()}


def probe(what: Callable[[], Any]) -> Any:
    """``what()``, or its error as a string: one broken probe must not hide the others."""
    try:
        return what()
    except Exception as exc:  # a missing package or tool is what this file is for
        return {"error": f"{type(exc).__name__}: {exc}"}
    except SystemExit as exc:
        return {"error": f"exit {exc.code}"}


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/gpu/smoke.py OUT.json")
    started = time.monotonic()
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "keras_backend": os.environ.get("KERAS_BACKEND"),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "versions": versions(),
        "jax": probe(jax_view),
        "nvidia_smi": probe(nvidia_smi),
        "castbench_engine": probe(castbench_engine),
    }
    report["probe_s"] = round(time.monotonic() - started, 1)
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    print(json.dumps(report, indent=1))
    broken = [name for name in ("jax", "castbench_engine") if "error" in report[name]]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
