"""The staged GPU run's driver (scripts/gpu/staged_run.py and staging.py) without a GPU or a
model: the budget arithmetic, stages skipped with a line naming them, a stage stopped at its
limit (SIGINT first), every ended stage packed into OUT at once, the compile cache carried in
and packed, and the plan the script runs."""

import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

GPU_KIT = Path(__file__).resolve().parents[1] / "scripts" / "gpu"
sys.path.insert(0, str(GPU_KIT))
import staged_run  # noqa: E402
import staging  # noqa: E402
from staging import Budget, Outcome, Stage, Summary, run_command, run_stage, run_stages  # noqa: E402


def nothing(folder, seconds):
    return []


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_stage_gets_its_share_its_cap_or_what_is_left_whichever_is_least():
    clock = Clock()
    budget = Budget(total_s=500, started=clock.now, reserve_s=20, clock=clock)
    assert budget.limit_for(Stage("a", 10, nothing, share=0.3)) == pytest.approx(150)
    assert budget.limit_for(Stage("b", 10, nothing, cap_s=30)) == pytest.approx(30)
    assert budget.limit_for(Stage("c", 10, nothing)) == pytest.approx(480)
    clock.now += 400  # 100 s left, 20 of them kept for packing
    assert budget.limit_for(Stage("a", 10, nothing, share=0.3)) == pytest.approx(80)
    clock.now += 200  # overspent: nothing, never a negative or unbounded limit
    assert budget.limit_for(Stage("c", 10, nothing)) == 0


def fake_runner(seconds_each: float, clock: Clock, ran: list):
    def run(stage, folder, limit):
        ran.append((stage.name, limit))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.txt").write_text(stage.name)
        clock.now += seconds_each
        return Outcome(stage.name, "finished", limit_s=limit, seconds=seconds_each)

    return run


def test_stages_run_in_order_and_those_without_time_are_skipped_with_a_line(tmp_path):
    clock = Clock()
    stages = [Stage("1-first", 10, nothing, cap_s=30), Stage("2-second", 60, nothing),
              Stage("3-third", 60, nothing), Stage("4-small", 20, nothing)]  # fmt: skip
    out, lines, ran = tmp_path / "out", [], []
    out.mkdir()
    summary = run_stages(stages, Budget(200, clock.now, 15, clock), tmp_path / "work", out,
                         Summary(200), fake_runner(100, clock, ran), lines.append)  # fmt: skip
    # 185 s to spend: the first gets its 30 s cap and takes 100, the second the 85 left;
    # neither 3-third nor 4-small is started with the 0 s then left
    assert ran == [("1-first", pytest.approx(30)), ("2-second", pytest.approx(85))]
    assert summary.names("finished") == ["1-first", "2-second"]
    assert summary.names("skipped") == ["3-third", "4-small"]
    assert any("3-third" in line and "needs at least 60 s" in line for line in lines)
    assert lines[-1] == "skipped stages: 3-third, 4-small"
    assert sorted(p.name for p in out.iterdir()) == ["1-first.tar.gz", "2-second.tar.gz",
                                                     "stages.json"]  # fmt: skip
    with tarfile.open(out / "2-second.tar.gz") as tar:
        assert tar.extractfile("2-second/result.txt").read() == b"2-second"


def test_a_stage_finished_in_an_earlier_call_is_not_run_again_unless_it_repeats(tmp_path):
    clock, ran, out = Clock(), [], tmp_path / "out"
    out.mkdir()
    for name in ("1-smoke", "2-done"):
        folder = tmp_path / "work" / name
        folder.mkdir(parents=True)
        (folder / staging.STAGE_FILE).write_text('{"status": "finished"}')
    stages = [Stage("1-smoke", 1, nothing, repeat=True), Stage("2-done", 1, nothing)]
    summary = run_stages(stages, Budget(100, clock.now, 0, clock), tmp_path / "work", out,
                         Summary(100), fake_runner(1, clock, ran), lambda _: None)  # fmt: skip
    assert [name for name, _ in ran] == ["1-smoke"]
    assert summary.names("done-earlier") == ["2-done"]
    assert (out / "2-done.tar.gz").is_file()  # what it holds comes back all the same


def test_a_command_over_its_limit_gets_sigint_then_is_cut(tmp_path):
    waits = ("import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
             "    print('rows kept', flush=True)\n")  # fmt: skip
    log, echo = io.StringIO(), io.StringIO()
    start = time.monotonic()
    # long enough for the interpreter to start on a loaded machine before the signal comes
    code, cut = run_command([sys.executable, "-c", waits], 8, log, {}, echo)
    assert cut and time.monotonic() - start < 8 + 4
    assert "rows kept" in log.getvalue() and "rows kept" in echo.getvalue()
    code, cut = run_command([sys.executable, "-c", "print('quick')"], 30, io.StringIO(), {},
                            io.StringIO())  # fmt: skip
    assert (code, cut) == (0, False)


def test_a_stage_stops_at_its_first_failing_command_and_keeps_its_log(tmp_path):
    def commands(folder, seconds):
        return [[sys.executable, "-c", "print('first')"],
                [sys.executable, "-c", "import sys; sys.exit(3)"],
                [sys.executable, "-c", "print('never')"]]  # fmt: skip

    folder = tmp_path / "stage"
    outcome = run_stage(Stage("s", 1, commands), folder, 60, {}, io.StringIO())
    assert (outcome.status, outcome.returncode) == ("failed", 3)
    log = (folder / staging.LOG_FILE).read_text()
    assert "first" in log and "never" not in log
    assert '"failed"' in (folder / staging.STAGE_FILE).read_text()


def test_the_plan_fits_what_comes_back_and_names_its_stages():
    stages = staged_run.plan(Path("/tmp/cache"))
    names = ["1-smoke", "2-scratch-jax", "3-engine-overhead", "4-efficientnetb4", "5-matrix"]
    assert [s.name for s in stages] == names
    # the stage archives, the log, stages.json and the cache archive
    assert len(stages) + 3 <= staging.MAX_OUT_FILES
    smoke = stages[0]
    assert smoke.cap_s <= 30 and smoke.repeat
    for stage in (stages[3], stages[4]):  # castbench timing: resumed, not pre-compiled, cached
        for argv in (a for a in stage.commands(Path("/tmp/s"), 100) if "timing" in a):
            joined = " ".join(argv)
            assert "--resume" in argv and "--compile-jobs 0" in joined
            assert "--compile-cache /tmp/cache" in joined


def test_the_matrix_runs_cheapest_first_inference_before_training():
    order = staged_run.cheapest_first()
    assert len(order) == 10 and order[0] == "MobileNetV2" and order[-1] == "VGG16"
    commands = staged_run.plan(Path("/tmp/cache"))[4].commands(Path("/tmp/s"), 100)
    modes = [argv[argv.index("--mode") + 1] for argv in commands]
    assert modes == ["infer", "train"]


def test_timm_follows_castbench_where_pytorch_is_installed_and_a_line_says_so_where_not(
    monkeypatch,
):
    monkeypatch.setattr(staged_run, "find_spec", lambda name: object())
    last = staged_run.plan(Path("/tmp/cache"))[3].commands(Path("/tmp/s"), 100)[-1]
    assert last[2:5] == ["castbench", "peer", "timm"] and "--resume" in last
    assert last[last.index("--budget") + 1] == "30"  # its share of the stage's 100 s
    monkeypatch.setattr(staged_run, "find_spec", lambda name: None)
    last = staged_run.plan(Path("/tmp/cache"))[3].commands(Path("/tmp/s"), 100)[-1]
    assert "peer timm not run: torch and timm not installed here" in last[-1]


def test_the_scratch_stage_writes_the_full_set_once_then_trains_resumably(tmp_path):
    stage = staged_run.plan(Path("/tmp/cache"))[1]
    folder = tmp_path / stage.name
    synth, train = stage.commands(folder, 100)
    data = str(tmp_path / staged_run.SYNTHETIC)  # beside the stage's folder: never packed
    assert synth[2:] == ["castbench", "data", "synth", "--scale", "full", data]
    assert train[2:4] == ["castbench", "train"] and "--resume" in train
    assert train[train.index("--data") + 1] == data
    (tmp_path / staged_run.SYNTHETIC).mkdir()
    (tmp_path / staged_run.SYNTHETIC / "castbench-synthetic.json").write_text("{}")
    assert stage.commands(folder, 100) == [train]  # a set already written is used


def test_archives_leave_out_locks_weights_and_checkpoints(tmp_path):
    run = tmp_path / "stage" / "run"
    run.mkdir(parents=True)
    for name in ("metrics.json", ".lock", "best.weights.h5", "checkpoint.json",
                 "checkpoint-epoch3.weights.h5", "checkpoint-epoch3.optimizer.npz"):  # fmt: skip
        (run / name).write_text(name)
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(staging.archive(tmp_path / "stage", out)) as tar:
        assert [m.name for m in tar.getmembers() if m.isfile()] == ["stage/run/metrics.json"]


def test_an_earlier_calls_out_is_unpacked_and_its_cache_used(tmp_path):
    earlier, work = tmp_path / "earlier", tmp_path / "work"
    for name in (staged_run.CACHE, "5-matrix"):
        (earlier / name).mkdir(parents=True)
        (earlier / name / "entry").write_text(name)
    out = tmp_path / "out"
    out.mkdir()
    for name in (staged_run.CACHE, "5-matrix"):
        staging.archive(earlier / name, out)
    assert staged_run.carry_in(out, work) == work / staged_run.CACHE
    assert (work / "5-matrix" / "entry").read_text() == "5-matrix"
    assert (work / staged_run.CACHE / "entry").is_file()
    # a cache folder is used where it is; nothing carried: a fresh one in the work folder
    assert staged_run.carry_in(earlier / staged_run.CACHE, work) == earlier / staged_run.CACHE
    assert staged_run.carry_in(None, work) == work / staged_run.CACHE


def test_the_cache_comes_back_only_when_it_fits(tmp_path, monkeypatch):
    cache, out = tmp_path / "cache", tmp_path / "out"
    cache.mkdir()
    out.mkdir()
    (cache / "entry").write_bytes(bytes(range(256)) * 400)
    note = staged_run.pack_cache(cache, out)
    assert note["brought_back"] and note["entries"] == 1 and note["bytes"] == 102_400
    assert (out / "xla-cache.tar.gz").is_file()
    monkeypatch.setattr(staged_run, "MAX_FILE_BYTES", 100)
    note = staged_run.pack_cache(cache, out)
    assert not note["brought_back"] and "over the" in note["why_not"]
    assert not (out / "xla-cache.tar.gz").exists()


@pytest.mark.parametrize("args", [[], ["out", "soon"], ["out", "10", "/no/such/cache"]])
def test_the_shell_script_refuses_bad_arguments_with_one_line(args, tmp_path):
    done = subprocess.run(["bash", str(GPU_KIT / "staged_run.sh"), *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("staged_run: error:") and done.stderr.count("\n") == 1


def test_the_driver_refuses_an_out_that_holds_files(tmp_path, capsys):
    (tmp_path / "old.tar.gz").write_text("")
    with pytest.raises(SystemExit) as stop:
        staged_run.parse(["--out", str(tmp_path)])
    assert stop.value.code == 2 and "must be empty" in capsys.readouterr().err
