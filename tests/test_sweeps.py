"""Sweeps that survive: a process pool, crashes and hangs, OOM retry, resume after SIGKILL,
the results-folder lock, shards and merge."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from castbench.cli import main
from castbench.errors import UsageError
from castbench.results import ResultsFolder, read_rows
from castbench.timing import pool, schedule, shard, worker
from castbench.timing.config import TimingConfig, build_matrix

TINY = ["--backbones", "mobilenetv2", "--size", "32", "--steps", "2", "--warmup", "1"]


def tiny_infer(*batches):
    return [TimingConfig("mobilenetv2", 32, b, "infer", steps=2, warmup=1) for b in batches]


# --------------------------------------------------------------- isolation in a pool

WORKER_SWEEP = textwrap.dedent(
    """
    import json, sys
    from castbench.results import ResultsFolder
    from castbench.timing.config import build_matrix
    from castbench.timing.pool import run_isolated

    configs = build_matrix(["mobilenetv2"], [1, 2, 3, 4], ["infer"], 32, steps=2, warmup=1)
    environments = []
    run_isolated(configs, ResultsFolder(sys.argv[1]), isolate="group", timeout=30,
                 on_environment=environments.append)
    frameworks = [m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules]
    print(json.dumps({"frameworks_in_parent": frameworks, "environments": len(environments)}))
    """
)


def test_a_crash_an_exception_and_a_hang_each_cost_one_row_and_the_sweep_completes(tmp_path):
    # one model group of four; the process SIGKILLs itself before bs 1, raises before bs 2 and
    # hangs before bs 4: each time a fresh process carries on with the rest of the group
    env = {**os.environ, worker.FAULT_ENV: "crash:|1|infer,raise:|2|infer,hang:|4|infer"}
    done = subprocess.run([sys.executable, "-c", WORKER_SWEEP, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {"frameworks_in_parent": [], "environments": 1}
    rows = {row["batch_size"]: row for row in read_rows(tmp_path)}
    assert sorted(rows) == [1, 2, 3, 4], done.stderr[-2000:]
    assert [rows[b]["status"] for b in (1, 2, 3, 4)] == ["error", "error", "ok", "error"], [
        rows[b]["error"] for b in (1, 2, 3, 4)
    ]
    assert rows[1]["status"] == "error" and rows[1]["error"] == "process killed by SIGKILL"
    assert rows[2]["status"] == "error"
    assert rows[2]["error"].startswith("process exited with status 1: RuntimeError: injected")
    assert rows[3]["status"] == "ok" and len(rows[3]["samples_s"]) == 2
    assert rows[4]["error"] == "timed out after 30 s"
    # a failed process's stderr is kept beside the rows
    raised = (tmp_path / "logs" / "MobileNetV2_32_2_infer_float32_auto_gap.log").read_text()
    assert "Traceback" in raised and "RuntimeError: injected fault" in raised
    assert len(list((tmp_path / "logs").glob("*.log"))) == 3
    assert all(row["device"].startswith("cpu") for row in rows.values())
    assert all(row["backend"] == "tensorflow" for row in rows.values())


def test_a_pool_process_does_not_outlive_a_killed_parent(tmp_path):
    import psutil

    script = (
        "import sys\n"
        "from castbench.results import ResultsFolder\n"
        "from castbench.timing.config import build_matrix\n"
        "from castbench.timing.pool import run_isolated\n"
        "configs = build_matrix(['mobilenetv2'], [2], ['infer'], 32)\n"
        "run_isolated(configs, ResultsFolder(sys.argv[1]))"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = psutil.Process(parent.pid).children()[0]
    finally:
        parent.kill()
        parent.wait()
    child.wait(timeout=30)  # the process sees its stdin close and exits


def test_pool_process_death_reasons_are_classified():
    assert pool._death_reason(-9, "", None, 99.0) == (
        "oom", "process killed by SIGKILL (out of memory: the kernel's OOM killer)",
    )  # fmt: skip
    assert pool._death_reason(-9, "", None, 10.0) == ("error", "process killed by SIGKILL")
    assert pool._death_reason(1, "MemoryError: no room", None, 0)[0] == "oom"
    status, message = pool._death_reason(-11, "Fatal Python error", None, 0)
    assert status == "error" and message == "process killed by SIGSEGV: Fatal Python error"


def test_partition_keeps_model_groups_or_splits_per_configuration():
    configs = build_matrix(["mobilenetv2", "vgg16"], [2, 4], ["train", "infer"], 32)
    assert [len(b) for b in schedule.partition(configs, "group")] == [4, 4]
    assert [len(b) for b in schedule.partition(configs, "config")] == [1] * 8


def test_oom_retries_at_half_the_batch_and_records_it(tmp_path, monkeypatch):
    from castbench.timing import sweep

    def short_of_memory(configs, device, on_start, on_row):
        for config in configs:
            on_start(config)
            if config.batch_size > 2:
                on_row(sweep.failed_row(config, device, MemoryError("simulated: no room")))
            else:
                on_row({**sweep.base_row(config, device), "status": "ok", "step_s_median": 0.1,
                        "step_s_std": 0.0, "images_per_s": 20.0})  # fmt: skip

    monkeypatch.setattr(sweep, "measure_group", short_of_memory)
    rows = sweep.run_sweep(tiny_infer(8), ResultsFolder(tmp_path), oom_retry=True)
    assert [(r["batch_size"], r["status"], r["retried_from_batch"]) for r in rows] == [
        (8, "oom", None), (4, "oom", 8), (2, "ok", 8),
    ]  # fmt: skip
    assert rows[0]["error"] == "MemoryError: simulated: no room"
    # a smaller batch the matrix measures anyway is not measured twice
    rows = sweep.run_sweep(tiny_infer(2, 4), ResultsFolder(tmp_path / "b"), oom_retry=True)
    assert [(r["batch_size"], r["status"]) for r in rows] == [(2, "ok"), (4, "oom")]
    # without --oom-retry an oom is just a row
    rows = sweep.run_sweep(tiny_infer(8), ResultsFolder(tmp_path / "c"))
    assert [r["status"] for r in rows] == ["oom"]


# ---------------------------------------------------------------------- resume and lock


def _has_rows(folder) -> bool:
    try:
        return bool(read_rows(folder))
    except UsageError:  # not written yet
        return False


def test_a_sweep_killed_with_sigkill_resumes_with_every_configuration_once(tmp_path):
    out = tmp_path / "run"
    argv = ["timing", *TINY, "--mode", "infer", "--batch", "1", "2", "3", "4", "5", "6",
            "--isolate", "none", "--no-plots", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "castbench", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        # the folder is written (empty) before the first measurement; kill after a row
        while not _has_rows(out) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = {row["key"]: row for row in read_rows(out)}
    assert 1 <= len(before) <= 6
    assert main([*argv, "--resume"]) == 0  # a killed run leaves no lock behind
    rows = read_rows(out)
    keys = [row["key"] for row in rows]
    expected = [c.key for c in build_matrix(["mobilenetv2"], [1, 2, 3, 4, 5, 6], ["infer"], 32)]
    assert sorted(keys) == sorted(expected) and len(set(keys)) == 6
    for row in rows:
        if row["key"] in before:
            assert row == before[row["key"]]  # finished rows are kept as they were
    assert len((out / "timing.csv").read_text().splitlines()) == 7


def test_a_locked_results_folder_is_refused_with_exit_2(tmp_path, capsys):
    folder = ResultsFolder(tmp_path / "busy")
    with folder.locked():
        code = main(["timing", *TINY, "--isolate", "none", "--out", str(tmp_path / "busy")])
        assert code == 2
        message = capsys.readouterr().err.strip()
        assert message.count("\n") == 0 and str(tmp_path / "busy") in message
        assert f"process {os.getpid()}" in message
    with folder.locked():  # released after the holder is done
        pass


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shard", "3/2"], "--shard"),
        (["--shard", "two"], "--shard"),
        (["--shard", "0/2"], "--shard"),
        (["--timeout", "5", "--isolate", "none"], "--timeout needs separate"),
    ],
)
def test_bad_sweep_options_exit_2_before_measuring(tmp_path, extra, message, capsys):
    assert main(["timing", *TINY, "--out", str(tmp_path / "x"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "timing.json").exists()


def test_a_foreign_schema_folder_is_refused(tmp_path, capsys):
    (tmp_path / "timing.json").write_text(json.dumps({"schema": "castbench.timing", "version": 7}))
    assert main(["timing", *TINY, "--resume", "--out", str(tmp_path)]) == 2
    assert "schema version 7" in capsys.readouterr().err


# ------------------------------------------------------------------------ shard and merge


def test_shards_are_whole_groups_deterministic_and_cover_the_matrix():
    matrix = build_matrix(["all"], [2, 4, 8], ["train", "infer"])
    for count in (1, 2, 3, 7):
        shards = shard.assign(matrix, count)
        assert shard.assign(list(matrix), count) == shards
        assert sorted(c.key for s in shards for c in s) == sorted(c.key for c in matrix)
        owners = {}
        for index, part in enumerate(shards):
            for config in part:
                assert owners.setdefault(config.model_key, index) == index
    loads = [sum(shard.config_cost(c) for c in s) for s in shard.assign(matrix, 2)]
    assert max(loads) / min(loads) < 1.5  # VGG16 and EfficientNetB4 do not land together
    with pytest.raises(UsageError):
        shard.parse_shard("1/0")
    assert shard.parse_shard(" 2/3 ") == (2, 3)


@pytest.fixture
def fake_measurement(monkeypatch):
    """Rows without building models: shard and merge are about bookkeeping."""
    from castbench.timing import sweep

    def measure_group(configs, device, on_start, on_row):
        for config in configs:
            on_start(config)
            median = 0.001 * config.batch_size
            on_row({**sweep.base_row(config, device), "status": "ok", "step_s_median": median,
                    "step_s_std": 0.0, "images_per_s": config.batch_size / median,
                    "samples_s": [median] * config.steps})  # fmt: skip

    monkeypatch.setattr(sweep, "measure_group", measure_group)


def test_two_shards_merged_equal_the_unsharded_sweep(tmp_path, fake_measurement, capsys):
    base = ["timing", "--backbones", "mobilenetv2", "resnet50", "--size", "32", "--batch", "2",
            "4", "--isolate", "none", "--no-plots"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "all")]) == 0
    assert main([*base, "--shard", "1/2", "--out", str(tmp_path / "s1")]) == 0
    assert main([*base, "--shard", "2/2", "--out", str(tmp_path / "s2")]) == 0
    everything = {row["key"] for row in read_rows(tmp_path / "all")}
    s1 = {row["key"] for row in read_rows(tmp_path / "s1")}
    s2 = {row["key"] for row in read_rows(tmp_path / "s2")}
    assert s1 and s2 and not s1 & s2 and len(everything) == 8
    run1 = json.loads((tmp_path / "s1" / "run.json").read_text())
    assert run1["shard"] == "1/2" and sorted(run1["matrix"]) == sorted(everything)
    capsys.readouterr()

    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out",
                 str(tmp_path / "merged")]) == 0  # fmt: skip
    assert {row["key"] for row in read_rows(tmp_path / "merged")} == everything
    assert "not measured" not in capsys.readouterr().out

    # one shard alone: the other shard's configurations are reported as gaps
    assert main(["merge", str(tmp_path / "s1"), "--out", str(tmp_path / "half")]) == 0
    out = capsys.readouterr().out
    assert "4 configuration(s) of the matrix not measured" in out
    assert all(key in out for key in s2)


def _folder_with(path, rows, **metadata):
    folder = ResultsFolder(path)
    for row in rows:
        folder.add(row)
    folder.write_run_metadata({"backend": "tensorflow", "device": "cpu:X", "castbench": "0.1.0",
                               **metadata})  # fmt: skip
    return path


def _row(key, median, measured_at="2025-01-01T00:00:00+00:00"):
    return {"key": key, "backbone": "A", "status": "ok", "step_s_median": median,
            "measured_at": measured_at}  # fmt: skip


def test_merge_refuses_conflicts_and_mixed_environments_unless_told(tmp_path, capsys):
    a = _folder_with(tmp_path / "a", [_row("k1", 0.1), _row("k2", 0.2)])
    b = _folder_with(tmp_path / "b", [_row("k2", 0.3, "2025-02-01T00:00:00+00:00")])
    c = _folder_with(tmp_path / "c", [_row("k3", 0.1)], device="gpu:Y")
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m1")]) == 2
    assert "k2" in capsys.readouterr().err
    assert main(["merge", str(a), str(b), "--prefer", "newest", "--out", str(tmp_path / "m2")]) == 0
    merged = {row["key"]: row for row in read_rows(tmp_path / "m2")}
    assert merged["k2"]["step_s_median"] == 0.3 and len(merged) == 2
    assert main(["merge", str(a), str(c), "--out", str(tmp_path / "m3")]) == 2
    assert "different environments" in capsys.readouterr().err
    assert main(["merge", str(a), str(c), "--allow-mixed", "--out", str(tmp_path / "m4")]) == 0
    assert "warning: mixed environments" in capsys.readouterr().err
    # the same folder twice has identical rows: no conflict
    assert main(["merge", str(a), str(a), "--out", str(tmp_path / "m5")]) == 0
    assert main(["merge", str(a), str(tmp_path / "nowhere"), "--out", str(tmp_path / "m6")]) == 2


PARENT_OF_AN_EMPTY_SHARD = textwrap.dedent(
    """
    import json, sys
    from castbench.cli import main
    code = main(["timing", "--backbones", "mobilenetv2", "resnet50", "--size", "32", "--batch",
                 "2", "--shard", "3/3", "--no-plots", "--out", sys.argv[1]])
    print(json.dumps({"code": code, "frameworks": sorted(
        name for name in ("tensorflow", "keras", "jax", "torch") if name in sys.modules)}))
    """
)


def test_an_empty_shard_leaves_an_empty_results_folder_that_merge_accepts(
    tmp_path, fake_measurement, capsys
):
    # two model groups in three shards: shard 2/3 has one group, shard 3/3 none
    base = ["timing", "--backbones", "mobilenetv2", "resnet50", "--size", "32", "--batch", "2",
            "--isolate", "none", "--no-plots"]  # fmt: skip
    assert main([*base, "--shard", "1/3", "--out", str(tmp_path / "s1")]) == 0
    assert main([*base, "--shard", "2/3", "--out", str(tmp_path / "s2")]) == 0
    # the empty shard runs as the CLI does, in its own interpreter: it exits 0, says why, and
    # (isolated by default) loads no framework in the parent
    done = subprocess.run([sys.executable, "-c", PARENT_OF_AN_EMPTY_SHARD, str(tmp_path / "s3")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"code": 0, "frameworks": []}
    assert "shard 3/3 is empty" in done.stderr
    assert read_rows(tmp_path / "s3") == []
    assert json.loads((tmp_path / "s3" / "run.json").read_text())["shard_keys"] == []
    capsys.readouterr()
    shards = [str(tmp_path / name) for name in ("s1", "s2", "s3")]
    assert main(["merge", *shards, "--out", str(tmp_path / "merged")]) == 0
    assert len(read_rows(tmp_path / "merged")) == 4
    assert "not measured" not in capsys.readouterr().out
    merged = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert [entry["command"].split()[-1] for entry in merged["invocations"]] == [
        str(tmp_path / name) for name in ("s1", "s2", "s3")
    ]


def test_resume_keeps_every_invocation_and_refuses_another_environment(
    tmp_path, fake_measurement, capsys
):
    out = tmp_path / "run"
    base = [*TINY, "--mode", "infer", "--isolate", "none", "--no-plots", "--out", str(out)]
    assert main(["timing", *base, "--batch", "2"]) == 0
    first = json.loads((out / "run.json").read_text())
    assert main(["timing", *base, "--batch", "2", "4", "--resume"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert [entry["command"] for entry in run["invocations"]] == [
        first["command"], first["command"] + " 4 --resume"
    ]  # fmt: skip
    assert run["invocations"][0] == first["invocations"][0]  # nothing of the first is lost
    assert run["started_at"] == first["started_at"] and run["command"] == first["command"]
    assert all(entry["environment"]["device"] for entry in run["invocations"])
    assert len(run["matrix"]) == 2 and len(read_rows(out)) == 2
    capsys.readouterr()

    # rows from another Keras version (known before anything starts) or another device (known
    # once the framework is up) are not added to this folder
    for field, value in (("keras", "2.0.0"), ("device", "gpu:Imaginary")):
        (out / "run.json").write_text(json.dumps({**run, field: value}))
        assert main(["timing", *base, "--batch", "2", "4", "8", "--resume"]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
        assert error.startswith("castbench: error: cannot --resume: "), error
        assert f"{field} {value!r} in {out}" in error
        assert len(read_rows(out)) == 2
