"""The same small configuration under the TensorFlow and the JAX backend (each in its own
process: Keras picks its backend once, at import), and what only JAX does: the step held on
the device beside the API step, XLA's memory account, and the persistent compilation cache."""

import json
import os
import subprocess
import sys

import pytest

from castbench.results import read_rows
from castbench.timing.profiling import trace_files

ARGS = ["timing", "--backbones", "mobilenetv2", "--size", "32", "--mode", "train", "infer",
        "--isolate", "none", "--no-plots"]  # fmt: skip
# JAX times both step kinds, enough steps for their medians to be told apart, at two batch sizes
JAX_ARGS = ["--batch", "2", "8", "--steps", "8", "--warmup", "2", "--step", "both"]


def _run(backend: str, out, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.run([sys.executable, "-m", "castbench", *ARGS, "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def both_backends(tmp_path_factory):
    root = tmp_path_factory.mktemp("backends")
    cache = ["--compile-cache", str(root / "xla-cache")]
    runs = {"tensorflow": (_run("tensorflow", root / "tensorflow", "--batch", "2", "--steps", "2",
                                "--warmup", "1"), root / "tensorflow")}  # fmt: skip
    runs["jax"] = (_run("jax", root / "jax", *JAX_ARGS, *cache, "--compile-jobs", "0",
                        "--profile", str(root / "traces-jax")), root / "jax")  # fmt: skip
    # the same matrix again, pre-compiled in a process of its own: everything from the cache
    runs["jax-again"] = (_run("jax", root / "jax-again", *JAX_ARGS, *cache, "--compile-jobs", "1"),
                         root / "jax-again")  # fmt: skip
    return runs


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_same_configuration_runs_and_rows_carry_the_backend(both_backends, backend):
    proc, out = both_backends[backend]
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(out)
    assert {r["mode"] for r in rows} == {"train", "infer"}
    for row in rows:
        assert row["status"] == "ok", row["error"]
        assert row["backend"] == backend
        assert row["device"].startswith("cpu:") and row["device"] != "cpu:cpu"
        assert row["gflops_per_image"] and row["gflops_per_image"] > 0
        assert row["replicas"] == 1 and row["global_batch"] == row["batch_size"]
        assert row["step_s_median"] > 0 and row["recompiled"] == 0
        assert row["images_per_s_pipelined"] > 0
    metadata = json.loads((out / "run.json").read_text())
    assert metadata["backend"] == backend and metadata["backend_version"]


def test_both_backends_count_the_same_flops_at_the_native_size():
    # the TF profiler over the frozen graph, XLA's analysis of the lowered module: within 2 %
    # (at 32 px the head's few element-wise operations weigh enough to differ by ~3 %)
    count = ("import sys; from castbench.flops import forward_flops_per_image as f; "
             "from castbench.models import build_model; from castbench.spec import ModelSpec; "
             "print(f(build_model(ModelSpec('MobileNetV2', 224))))")  # fmt: skip
    flops = {}
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend}
        done = subprocess.run([sys.executable, "-c", count], capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        flops[backend] = float(done.stdout.split()[-1])
    assert flops["jax"] == pytest.approx(flops["tensorflow"], rel=0.02)


def test_jit_compile_records_what_was_asked_and_what_keras_used(both_backends):
    # "auto": Keras turns XLA off for TensorFlow on a CPU-only machine, on for JAX
    for backend, resolved in (("tensorflow", False), ("jax", True)):
        rows = read_rows(both_backends[backend][1])
        assert {r["jit_compile"] for r in rows} == {None}  # asked: auto
        assert {r["jit_resolved"] for r in rows} == {resolved}


def test_jax_step_both_rows_carry_the_api_step_beside_the_compiled_one(both_backends):
    for row in read_rows(both_backends["jax"][1]):
        assert row["step"] == "compiled" and not row["key"].endswith("|step-api")
        assert row["framework_overhead_ms"] == pytest.approx(
            (row["api_step_s_median"] - row["compiled_step_s_median"]) * 1e3
        )
        samples = row["step_samples_s"]
        assert len(samples["compiled"]["samples_s"]) == len(samples["api"]["samples_s"]) == 8
        # the timed steps ran the executable compiled before them (the recompile guard counts
        # JAX's own compile events); which kind is faster at 32 px is within a CPU's noise
        assert row["recompiled"] == 0


def test_tensorflow_rows_time_one_step_kind_by_default(both_backends):
    for row in read_rows(both_backends["tensorflow"][1]):
        assert set(row["step_samples_s"]) == {"compiled"}
        assert row["api_step_s_median"] is None


def test_jax_step_memory_grows_with_the_batch(both_backends):
    rows = read_rows(both_backends["jax"][1])
    for mode in ("train", "infer"):
        memory = {r["batch_size"]: r["step_mem_mb"] for r in rows if r["mode"] == mode}
        assert 0 < memory[2] < memory[8], (mode, memory)
    assert {r["step_mem_source"] for r in rows} == {"xla"}


def test_a_second_jax_run_compiles_nothing(both_backends):
    first, again = (read_rows(both_backends[run][1]) for run in ("jax", "jax-again"))
    assert {r["compile_cache_hit"] for r in first} == {False}
    assert {r["compile_cache_hit"] for r in again} == {True}
    by_key = {row["key"]: row for row in first}
    for row in again:  # the cold compile time the cache kept, and this run's load time apart
        assert row["compile_s"] is not None and row["compile_load_s"] > 0
        # one quantity on a hit and on a miss: trace + lower + the backend compile. JAX stores
        # the backend compile in whole seconds (up to 1 s lost) and the miss also hashes and
        # writes the entry, so the hit reads somewhat lower; never just this run's load time.
        cold = by_key[row["key"]]["compile_s"]
        low, high = 0.7 * cold - 1.0, 2.0 * cold + 1.0
        assert low < row["compile_s"] < high, (row["key"], cold, row["compile_s"])
        assert row["compile_s"] > row["compile_load_s"], row
    metadata = json.loads((both_backends["jax-again"][1] / "run.json").read_text())
    assert metadata["compile_jobs"] == 1 and metadata["precompile_s"] > 0
    assert metadata["device_peak_gflops"]["float32"] > 0


def test_jax_profile_traces_are_written(both_backends):
    _, out = both_backends["jax"]
    for row in read_rows(out):
        assert trace_files(row["profile_dir"]), row["profile_dir"]
