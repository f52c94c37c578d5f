"""--processes N: rows of one configuration from several processes combined into one."""

import pytest

from castbench.errors import UsageError
from castbench.results import ResultsFolder
from castbench.timing.config import TimingConfig
from castbench.timing.processes import combine, repeat_folder, run_repeated


def row(key, median, status="ok"):
    return {"key": key, "backbone": "MobileNetV2", "input_size": 32, "batch_size": 2,
            "mode": "infer", "status": status, "step_s_median": median,
            "samples_s": [median]}  # fmt: skip


def test_the_median_process_speaks_for_the_configuration_with_every_median_beside_it():
    combined = combine([row("k", 0.30), row("k", 0.10), row("k", 0.20)])
    assert combined["step_s_median"] == 0.20 and combined["processes"] == 3
    assert combined["process_medians_s"] == [0.30, 0.10, 0.20]
    assert combined["process_spread_pct"] == pytest.approx(50.0)  # sd 0.1 over median 0.2


def test_a_failure_in_any_process_is_the_configuration_s_row():
    failed = combine([row("k", 0.1), {**row("k", None, "oom"), "error": "OOM"}])
    assert failed["status"] == "oom" and failed["processes"] == 2


def test_each_repeat_runs_into_its_own_folder_and_resumes_it(tmp_path):
    configs = [TimingConfig("mobilenetv2", 32, b, mode="infer") for b in (2, 4)]
    calls = []

    def run_once(todo, into):
        calls.append((into.path.name, [c.batch_size for c in todo]))
        for config in todo:
            into.add(row(config.key, 0.01 * config.batch_size * (1 + len(calls) / 100)))

    folder = ResultsFolder(tmp_path)
    ResultsFolder(repeat_folder(tmp_path, 1)).add(row(configs[0].key, 0.02))  # p2 half done
    run_repeated(configs, folder, 3, run_once)
    assert calls == [("p1", [2, 4]), ("p2", [4]), ("p3", [2, 4])]
    assert [r["processes"] for r in folder.rows] == [3, 3]
    assert all(len(r["process_medians_s"]) == 3 for r in folder.rows)


def test_processes_need_fresh_processes(tmp_path, capsys):
    from castbench.cli import main

    out = str(tmp_path / "x")
    code = main(["timing", "--backbones", "mobilenetv2", "--size", "32", "--batch", "2",
                 "--processes", "2", "--isolate", "none", "--out", out])  # fmt: skip
    assert code == 2 and "--processes needs fresh processes" in capsys.readouterr().err
    with pytest.raises(UsageError):
        from castbench.timing.run import SweepSettings, run_timing_sweep

        run_timing_sweep([], [], tmp_path / "y", None, SweepSettings(processes=0))
