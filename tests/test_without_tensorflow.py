"""Under KERAS_BACKEND=jax no castbench command needs TensorFlow. Each runs in a process whose
``import tensorflow`` fails (a package of that name first on PYTHONPATH raises the error a
missing package raises) and works, or, for a feature that is TensorFlow's own, exits 2 with one
line naming what to install. Tiny sizes: 32 px, one epoch, a 24 + 12 image synthetic set; the
training runs share one JAX compilation cache, so only the first compiles."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHADOW = 'raise ModuleNotFoundError("No module named \'tensorflow\' (hidden)", name="tensorflow")\n'
SMALL = ("--size", "32", "--epochs", "1", "--batch", "8", "--precise-bn", "2")


class Place:
    """A folder, and the environment of a process that cannot import TensorFlow."""

    def __init__(self, base: Path):
        self.base = base
        (base / "hidden" / "tensorflow").mkdir(parents=True)
        (base / "hidden" / "tensorflow" / "__init__.py").write_text(SHADOW)
        path = [str(base / "hidden"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path)),
                    "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                    "CASTBENCH_CACHE": str(base / "cache"),
                    "CASTBENCH_COMPILE_CACHE": str(base / "xla")}  # fmt: skip

    def run(self, *argv: str, backend: str = "jax", cwd: Path | None = None):
        return subprocess.run(argv, cwd=cwd or self.base, capture_output=True, text=True,
                              env={**self.env, "KERAS_BACKEND": backend}, timeout=900)  # fmt: skip

    def castbench(self, *args: str, backend: str = "jax") -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "castbench", *args, backend=backend)


def works(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    return done


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Place:
    return Place(tmp_path_factory.mktemp("without-tf"))


@pytest.fixture(scope="module")
def data(place) -> Path:
    works(place.castbench("data", "synth", "set", "--train", "24", "--test", "12"))
    return place.base / "set"


@pytest.fixture(scope="module")
def trained(place, data) -> Path:
    works(place.castbench("train", "--backbone", "MobileNetV2", *SMALL, "--data", str(data),
                          "--out", "trained"))  # fmt: skip
    return place.base / "trained"


@pytest.fixture(scope="module")
def timed(place, data) -> Path:
    works(place.castbench("timing", "--backbones", "MobileNetV2", "--size", "32", "--batch", "2",
                          "--steps", "3", "--warmup", "1", "--compile-jobs", "0", "--epoch",
                          "--data", str(data), "--n-train", "8", "--aug", "additional",
                          "--out", "timed"))  # fmt: skip
    return place.base / "timed"


def test_the_hidden_package_stops_tensorflow_and_keras_runs_on_jax(place):
    failed = place.run(sys.executable, "-c", "import tensorflow")
    assert failed.returncode == 1 and "ModuleNotFoundError" in failed.stderr
    done = works(place.run(sys.executable, "-c", "import keras; print(keras.backend.backend())"))
    assert done.stdout.strip() == "jax"


def test_backbones_describe_and_augment_preview(place, data):
    assert "EfficientNetB4" in works(place.castbench("backbones", "--no-params")).stdout
    described = works(place.castbench("describe", "MobileNetV2", "--size", "32")).stdout
    assert "2,259,265" in described and "forward GFLOPs/image" in described
    works(place.castbench("augment", "preview", "--data", str(data), "--preset", "additional",
                          "--size", "64", "--out", "preview.png"))  # fmt: skip
    assert (place.base / "preview.png").stat().st_size > 0


def test_timing_with_a_measured_epoch_then_plot_compare_merge(place, timed):
    measured = {r["mode"]: r for r in rows(timed / "timing.csv")}
    assert {r["status"] for r in measured.values()} == {"ok"}
    assert {r["backend"] for r in measured.values()} == {"jax"}
    assert 0 <= float(measured["train"]["data_wait_fraction"]) < 1
    works(place.castbench("plot", str(timed)))
    assert (timed / "plots" / "time_per_batch.png").is_file()
    works(place.castbench("compare", str(timed), str(timed)))
    works(place.castbench("merge", str(timed), "--out", "merged"))
    assert len(rows(place.base / "merged" / "timing.csv")) == 2


def test_train_writes_its_metrics(trained):
    thresholds = rows(trained / "metrics.csv")
    assert len(thresholds) == 9 and sum(int(thresholds[0][k]) for k in "tp fp tn fn".split()) == 12
    run = json.loads((trained / "run.json").read_text())
    assert run["environment"]["backend"] == "jax"
    assert run["config"]["precise_bn"] == 2 and run["best_epoch"] == 1
    assert (trained / "best.weights.h5").is_file() and (trained / "predictions.csv").is_file()


def test_experiment_runs_and_the_report(place, data, trained):
    works(place.castbench("experiment", "backbone", "--only", "mobilenetv2", "--runs", "2",
                          *SMALL, "--data", str(data), "--out", "grid"))  # fmt: skip
    grid = rows(place.base / "grid" / "backbone.csv")
    assert [(r["run"], r["status"], r["backend"]) for r in grid] == [
        ("1", "ok", "jax"),
        ("2", "ok", "jax"),
    ]
    assert (place.base / "grid" / "backbone_summary.csv").is_file()
    works(place.castbench("report", "grid", str(trained), "--out", "report"))
    assert "MobileNetV2" in (place.base / "report" / "report.md").read_text()


def test_pytest_bench(place):
    out = place.base / "bench.json"
    works(place.run(sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q",
                    "--castbench-backbones", "mobilenetv2", "--castbench-batches", "2",
                    "--castbench-size", "32", "--castbench-modes", "infer",
                    "--castbench-steps", "2", "--castbench-warmup", "1",
                    f"--benchmark-json={out}", cwd=ROOT))  # fmt: skip
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert [b["extra_info"]["backend"] for b in benchmarks] == ["jax"]


def test_peer_runs_or_names_its_extra(place):
    done = place.castbench("peer", "timm", "--backbones", "MobileNetV2", "--size", "32",
                           "--batch", "2", "--steps", "2", "--warmup", "1", "--mode", "infer",
                           "--out", "peer")  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    if done.returncode == 2:  # no PyTorch here: the one line names the extra
        assert done.stderr.count("\n") == 1 and "castbench[peer]" in done.stderr
    else:
        assert done.returncode == 0 and (place.base / "peer" / "timing.csv").is_file()


@pytest.mark.parametrize(
    ("args", "backend", "install"),
    [
        (("export", "MobileNetV2", "--size", "32", "--format", "litert", "--out", "x"), "jax",
         "pip install tensorflow"),
        (("timing", "--backbones", "MobileNetV2", "--strategy", "mirrored", "--out", "x"), "jax",
         "pip install tensorflow"),
        (("describe", "MobileNetV2", "--size", "32"), "tensorflow", "pip install tensorflow"),
    ],
)  # fmt: skip
def test_tensorflow_only_features_exit_2_with_one_line(place, args, backend, install):
    done = place.castbench(*args, backend=backend)
    assert done.returncode == 2, done.stderr[-4000:]
    assert done.stderr.count("\n") == 1 and install in done.stderr, done.stderr
