"""`pytest bench` itself, at a tiny size: the JSON it writes is a complete record."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from castbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXTRA_FIELDS = {
    "backbone", "input_size", "batch_size", "mode", "precision", "trainable", "backend", "device",
    "params_total", "gflops_per_image", "images_per_s", "compile_s", "steps_per_epoch",
}  # fmt: skip


def run_bench(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out.json"
    result = run_bench("--castbench-backbones", "mobilenetv2", "--castbench-batches", "2,4",
                       "--castbench-size", "32", "--castbench-modes", "infer",
                       "--castbench-runtimes", "keras,onnxruntime",
                       "--castbench-steps", "4", "--castbench-warmup", "1",
                       f"--benchmark-json={out}")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_json_holds_one_benchmark_per_case_with_complete_extra_info(bench_json):
    benchmarks = json.loads(bench_json.read_text())["benchmarks"]
    served = importlib.util.find_spec("onnxruntime") is not None  # else skipped
    assert [b["param"] for b in benchmarks] == [
        f"MobileNetV2-32px-bs{batch}-infer{runtime}" for batch in (2, 4)
        for runtime in ("", *(["-onnxruntime"] if served else []))
    ]  # fmt: skip
    for bench in benchmarks:
        extra = bench["extra_info"]
        assert EXTRA_FIELDS <= set(extra)
        assert bench["stats"]["rounds"] == 4 and len(bench["stats"]["data"]) == 4
        assert extra["images_per_s"] == pytest.approx(
            extra["batch_size"] / bench["stats"]["median"]
        )
        assert extra["steps_per_epoch"] == -(-5307 // extra["batch_size"])
        assert bench["group"] == "MobileNetV2 32px"
        if extra["runtime"] == "onnxruntime":  # gated against Keras before it was timed
            assert extra["max_abs_diff"] <= 1e-4 and extra["artifact_mb"] > 1


def test_pytest_benchmark_compare_reads_the_json(bench_json):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pytest-benchmark"), "compare", str(bench_json)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "MobileNetV2-32px-bs4-infer" in result.stdout


def test_castbench_plot_draws_from_benchmark_json(bench_json, tmp_path):
    assert main(["plot", str(bench_json), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "time_per_batch.png").stat().st_size > 10_000


def test_bad_matrix_option_is_a_usage_error():
    result = run_bench("--castbench-backbones", "nope", "--collect-only")
    assert result.returncode == 4
    assert "unknown backbone 'nope'" in result.stdout + result.stderr
