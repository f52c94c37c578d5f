"""How XLA computes and compiles a JAX timing run (--matmul-precision, --fast-compile): the
settings reach the measuring processes, run.json and every row record them, a folder is not
resumed under other ones, and a pre-compiling process's failures reach stderr."""

import json
import os
import subprocess
import sys

import pytest

from castbench.cli import main
from castbench.errors import UsageError
from castbench.results import read_rows
from castbench.timing.config import TimingConfig
from castbench.timing.xla_options import (
    FAST_COMPILE_FLAG,
    PRECISION_ENV,
    XlaOptions,
    resume_conflicts,
)


def test_the_options_are_refused_outside_jax():
    with pytest.raises(UsageError, match="--matmul-precision and --fast-compile"):
        XlaOptions.from_options("highest", True, "tensorflow")
    assert XlaOptions.from_options(None, False, "tensorflow") == XlaOptions()


def test_a_tensorflow_timing_run_with_a_matmul_precision_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(["timing", "--matmul-precision", "high"]))
    assert info.value.code == 2
    assert "KERAS_BACKEND=jax" in capsys.readouterr().err


def test_export_sets_what_workers_read_once(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert XlaOptions().metadata() == {"matmul_precision": "default", "fast_compile": False}
    options = XlaOptions("highest", fast_compile=True)
    options.export()
    options.export()
    assert os.environ[PRECISION_ENV] == "highest"
    assert os.environ["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {FAST_COMPILE_FLAG}"
    assert options.metadata() == {"matmul_precision": "highest", "fast_compile": True}


def test_resume_conflicts_name_what_differs_and_skip_what_is_unknown():
    assert resume_conflicts({"matmul_precision": "default"}, {"matmul_precision": "highest"}) == [
        "matmul_precision 'default' in the folder but 'highest' in this run"
    ]
    assert resume_conflicts({}, {"matmul_precision": "highest", "fast_compile": True}) == []
    assert resume_conflicts({"fast_compile": False}, {"fast_compile": False}) == []


def _jax_timing(out, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "castbench", "timing", "--backbones", "mobilenetv2", "--size",
            "32", "--batch", "2", "--mode", "infer", "--steps", "2", "--warmup", "1",
            "--isolate", "none", "--no-plots", "--compile-jobs", "0", "--compile-cache", "off",
            "--out", str(out), *extra]  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env.pop(PRECISION_ENV, None)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def test_a_jax_run_records_its_matmul_precision_in_rows_and_run_json(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "highest"
    done = _jax_timing(out, "--matmul-precision", "highest", "--fast-compile")
    assert done.returncode == 0, done.stderr[-3000:]
    # the measuring process's own JAX setting, read back when the row was made
    assert [row["matmul_precision"] for row in read_rows(out)] == ["highest"]
    metadata = json.loads((out / "run.json").read_text())
    assert metadata["matmul_precision"] == "highest" and metadata["fast_compile"] is True
    assert FAST_COMPILE_FLAG in metadata["xla_flags"]
    # more rows into the folder at another precision would not be comparable
    again = _jax_timing(out, "--resume", "--batch", "4")
    assert again.returncode == 2
    assert "matmul_precision 'highest' in the folder but 'default'" in again.stderr


def test_a_failed_pre_compile_is_logged_and_named_in_the_summary(tmp_path, capfd):
    from castbench.timing.precompile import precompile

    broken = TimingConfig("mobilenetv2", 32, 2, weights=str(tmp_path / "missing.weights.h5"))
    done = precompile([broken], 1, tmp_path / "logs")
    assert done.seconds > 0 and len(done.failed) == 1
    assert done.failed[0].startswith(broken.key) and "missing.weights.h5" in done.failed[0]
    assert broken.key in (tmp_path / "logs" / "precompile-1.log").read_text()
    err = capfd.readouterr().err
    assert "1 failed" in err and f"pre-compile failed: {broken.key}" in err


def test_pre_compiles_are_dealt_one_by_one_heaviest_first():
    from castbench.timing.precompile import deal
    from castbench.timing.shard import config_cost

    heavy = [TimingConfig("efficientnetb4", 380, 8, mode=m) for m in ("train", "infer")]
    light = [TimingConfig("mobilenetv2", 224, b, mode="infer") for b in (2, 4, 8)]
    batches = deal(light + heavy, 2)
    # the two heaviest open the two processes: one backbone's group is split between them
    assert [batch[0] for batch in batches] == heavy
    assert sorted(c.key for batch in batches for c in batch) == sorted(c.key for c in light + heavy)
    for batch in batches:  # each process works through its share heaviest first
        assert [config_cost(c) for c in batch] == sorted(map(config_cost, batch), reverse=True)
    assert deal(light, 8) == [[c] for c in sorted(light, key=config_cost, reverse=True)]
