"""The same small configuration under the TensorFlow and the JAX backend (each in its own
process: Keras picks its backend once, at import)."""

import json
import os
import subprocess
import sys

import pytest

from castbench.results import read_rows
from castbench.timing.profiling import trace_files

pytest.importorskip("jax")

ARGS = ["timing", "--backbones", "mobilenetv2", "--size", "32", "--batch", "2", "--mode",
        "train", "infer", "--steps", "2", "--warmup", "1", "--isolate", "none",
        "--no-plots"]  # fmt: skip


def _run(backend: str, out, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.run([sys.executable, "-m", "castbench", *ARGS, "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def both_backends(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    runs = {}
    for backend in ("tensorflow", "jax"):
        extra = ["--profile", str(root / f"traces-{backend}")] if backend == "jax" else []
        runs[backend] = (_run(backend, root / backend, *extra), root / backend)
    return runs


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_same_configuration_runs_and_rows_carry_the_backend(both_backends, backend):
    proc, out = both_backends[backend]
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(out)
    assert [(r["mode"], r["status"]) for r in rows] == [("train", "ok"), ("infer", "ok")]
    for row in rows:
        assert row["backend"] == backend
        assert row["device"].startswith("cpu:") and row["device"] != "cpu:cpu"
        assert row["gflops_per_image"] and row["gflops_per_image"] > 0
        assert row["replicas"] == 1 and row["global_batch"] == 2
        assert row["step_s_median"] > 0
    metadata = json.loads((out / "run.json").read_text())
    assert metadata["backend"] == backend and metadata["backend_version"]


def test_both_backends_count_comparable_flops(both_backends):
    flops = {b: read_rows(out)[0]["gflops_per_image"] for b, (_, out) in both_backends.items()}
    # the TF profiler and XLA's cost analysis count slightly different things; same ballpark
    assert 0.5 < flops["jax"] / flops["tensorflow"] < 2.0


def test_jit_compile_records_what_keras_used(both_backends):
    # "auto": Keras turns XLA off for TensorFlow on a CPU-only machine, on for JAX
    assert {r["jit_compile"] for r in read_rows(both_backends["tensorflow"][1])} == {False}
    assert {r["jit_compile"] for r in read_rows(both_backends["jax"][1])} == {True}


def test_jax_profile_traces_are_written(both_backends):
    _, out = both_backends["jax"]
    for row in read_rows(out):
        assert trace_files(row["profile_dir"]), row["profile_dir"]
