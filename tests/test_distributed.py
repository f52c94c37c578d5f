"""Distributed timing: keys, checks, scaling efficiency, and a real two-replica mirrored run and
two-worker multiworker run on loopback (tiny model, CPU only)."""

import json
import os
import subprocess
import sys

import pytest

from castbench.cli import main
from castbench.errors import UsageError
from castbench.identity import ConfigIdentity
from castbench.results import ResultsFolder, read_rows, row_header
from castbench.timing.config import TimingConfig, build_matrix
from castbench.timing.distributed.launcher import local_tf_configs
from castbench.timing.distributed.plan import plan
from castbench.timing.distributed.scaling import baseline_identity, fill_scaling_efficiency
from castbench.timing.distributed.strategy import cluster_size, is_chief
from castbench.timing.profiling import trace_files


def test_default_keys_do_not_change_and_distributed_keys_are_unique():
    base = TimingConfig("MobileNetV2", 32, 2)
    assert base.key == "MobileNetV2|32|2|train|float32|auto|gap"
    mirrored = TimingConfig("MobileNetV2", 32, 2, strategy="mirrored", replicas=2)
    worker = TimingConfig("MobileNetV2", 32, 2, strategy="multiworker", workers=2)
    keys = {base.key, mirrored.key, worker.key,
            TimingConfig("MobileNetV2", 32, 2, strategy="mirrored", replicas=4).key}  # fmt: skip
    assert len(keys) == 4
    assert mirrored.key == base.key + "|mirrored:r2"
    assert base.model_key != mirrored.model_key  # never one model across strategies
    assert mirrored.steps_per_epoch == -(-5307 // 4)  # an epoch at the global batch


@pytest.mark.parametrize("step", ["compiled", "api"])
def test_a_distributed_row_finds_its_own_baseline(step):
    """Matched by identity, not by splitting the key: an API-step key ends in '|step-api'."""

    def row(config, replicas=1):
        return {**row_header(config, "cpu", "tensorflow"), "replicas": replicas}

    base = TimingConfig("MobileNetV2", 32, 2, step=step)
    mirrored = TimingConfig("MobileNetV2", 32, 2, strategy="mirrored", replicas=2, step=step)
    worker = TimingConfig("MobileNetV2", 32, 2, strategy="multiworker", workers=2, step=step)
    expected = ConfigIdentity.from_row(row(base))
    assert baseline_identity(row(mirrored, 2)) == baseline_identity(row(worker, 2)) == expected
    assert baseline_identity(row(base)) is None
    other_kind = TimingConfig("MobileNetV2", 32, 2, step="api" if step == "compiled" else step)
    assert (ConfigIdentity.from_row(row(other_kind)) == expected) == (step == "api")


def test_configurations_stay_plain_data():
    config = TimingConfig("MobileNetV2", 32, 2, strategy="mirrored", replicas=2, profile="/x")
    assert TimingConfig(**json.loads(json.dumps(config.as_dict()))) == config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "parameter_server"}, "unknown strategy"),
        ({"strategy": "mirrored", "replicas": 0}, "replicas must be a positive"),
        ({"strategy": "multiworker", "workers": -1}, "workers must be a positive"),
        ({"replicas": 2}, "--replicas needs --strategy mirrored"),
    ],
)
def test_bad_distributed_configurations(kwargs, message):
    with pytest.raises(UsageError, match=message):
        TimingConfig("MobileNetV2", 32, 2, **kwargs)


def test_plan_orders_baselines_first_and_checks_the_backend(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    chosen = plan(["multiworker", "mirrored", "default"], 2, 3, None, "tensorflow")
    assert [v["strategy"] for v in chosen.variants] == ["default", "mirrored", "multiworker"]
    assert chosen.launch_workers and chosen.workers == 3
    matrix = [c for v in chosen.variants for c in build_matrix(["mobilenetv2"], [2], ["train"],
                                                               32, **v)]  # fmt: skip
    assert [c.known_replicas for c in matrix] == [1, 2, 3]
    with pytest.raises(UsageError, match="needs the TensorFlow backend"):
        plan(["mirrored"], None, None, None, "jax")
    plan(["default"], None, None, None, "jax")  # the default strategy runs on any backend


def test_tf_config_cluster_and_chief(monkeypatch):
    configs = local_tf_configs(2)
    assert [c["task"]["index"] for c in configs] == [0, 1]
    assert len(set(configs[0]["cluster"]["worker"])) == 2
    assert all(a.startswith("127.0.0.1:") for a in configs[0]["cluster"]["worker"])
    assert cluster_size(configs[0]) == 2
    assert is_chief(configs[0]) and not is_chief(configs[1])
    monkeypatch.setenv("TF_CONFIG", json.dumps(configs[1]))
    chosen = plan(["multiworker"], None, None, None, "tensorflow")
    assert chosen.in_process_multiworker and chosen.workers == 2


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--strategy", "mirrored", "--replicas", "0"], {}, "--replicas must be a positive"),
        (["--strategy", "multiworker", "--workers", "0"], {}, "--workers must be a positive"),
        (["--strategy", "multiworker"], {}, "needs TF_CONFIG"),
        (["--strategy", "multiworker"], {"TF_CONFIG": "{nope"}, "TF_CONFIG is not valid JSON"),
        (["--workers", "2"], {}, "--workers needs --strategy multiworker"),
        (["--replicas", "2"], {}, "--replicas needs --strategy mirrored"),
        (["--strategy", "mirrored"], {"KERAS_BACKEND": "jax"}, "needs the TensorFlow backend"),
    ],
)
def test_bad_distribution_options_exit_2_with_one_line(argv, env, message, monkeypatch, capsys,
                                                         tmp_path):  # fmt: skip
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--out",
                 str(tmp_path / "out"), *argv])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]


def _row(key, replicas, images_per_s, status="ok"):
    backbone, size, batch, mode, precision, *_, last = key.split("|")
    strategy = last.split(":")[0] if ":" in last else "default"
    return {"key": key, "backbone": backbone, "input_size": int(size), "batch_size": int(batch),
            "mode": mode, "precision": precision, "strategy": strategy, "replicas": replicas,
            "images_per_s": images_per_s, "status": status}  # fmt: skip


def test_scaling_efficiency_against_the_one_replica_baseline(tmp_path):
    folder = ResultsFolder(tmp_path)
    base = "MobileNetV2|96|8|train|float32|auto|gap"
    folder.add(_row(base, 1, 100.0))
    folder.add(_row(base + "|mirrored:r2", 2, 150.0))
    folder.add(_row(base + "|multiworker:w2", 2, 80.0))
    folder.add(_row("ResNet50|96|8|train|float32|auto|gap|mirrored:r2", 2, 10.0))  # no baseline
    assert fill_scaling_efficiency(folder) == 2
    rows = {r["key"]: r for r in read_rows(tmp_path)}
    assert rows[base + "|mirrored:r2"]["scaling_efficiency"] == pytest.approx(0.75)
    assert rows[base + "|multiworker:w2"]["scaling_efficiency"] == pytest.approx(0.4)
    assert rows[base]["scaling_efficiency"] is None
    assert rows["ResNet50|96|8|train|float32|auto|gap|mirrored:r2"]["scaling_efficiency"] is None


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory):
    """One run: the baseline and two replicas in this process, then two local workers."""
    root = tmp_path_factory.mktemp("distributed")
    out, traces = root / "run", root / "traces"
    argv = [sys.executable, "-m", "castbench", "timing", "--backbones", "mobilenetv2",
            "--size", "32", "--batch", "2", "--mode", "train", "--steps", "2", "--warmup", "1",
            "--strategy", "default", "mirrored", "multiworker", "--replicas", "2",
            "--workers", "2", "--timeout", "150", "--isolate", "none", "--no-plots",
            "--out", str(out),
            "--profile", str(traces)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERAS_BACKEND")}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    return proc, out, traces


def test_mirrored_and_multiworker_rows_have_their_replicas(distributed_run):
    proc, out, _ = distributed_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["strategy"]: r for r in read_rows(out)}
    assert set(rows) == {"default", "mirrored", "multiworker"}
    for strategy, replicas in (("default", 1), ("mirrored", 2), ("multiworker", 2)):
        row = rows[strategy]
        assert row["status"] == "ok", row["error"]
        assert row["replicas"] == replicas and row["per_replica_batch"] == row["batch_size"] == 2
        assert row["global_batch"] == 2 * replicas
        assert row["steps_per_epoch"] == -(-5307 // row["global_batch"])
        assert row["images_per_s"] == pytest.approx(row["global_batch"] / row["step_s_median"])
        assert row["backend"] == "tensorflow"
    for strategy in ("mirrored", "multiworker"):  # the baseline was measured in the same run
        efficiency = rows[strategy]["scaling_efficiency"]
        expected = rows[strategy]["images_per_s"] / (2 * rows["default"]["images_per_s"])
        assert efficiency == pytest.approx(expected, rel=1e-3)
    assert rows["default"]["scaling_efficiency"] is None


def test_every_worker_keeps_its_own_rows_and_the_chief_reports(distributed_run):
    _, out, _ = distributed_run
    chief = read_rows(out / "workers" / "worker-0")
    other = read_rows(out / "workers" / "worker-1")
    assert [r["replicas"] for r in chief + other] == [2, 2]
    main_row = next(r for r in read_rows(out) if r["strategy"] == "multiworker")
    assert main_row["samples_s"] == chief[0]["samples_s"]


def test_profiles_are_written_per_configuration(distributed_run):
    _, out, traces = distributed_run
    for row in read_rows(out):
        folder = row["profile_dir"]
        assert folder and folder.startswith(str(traces)), row["key"]
        assert trace_files(folder), f"no trace files in {folder}"
    assert trace_files(traces / "worker-1")  # the other worker traces too (steps are collective)
