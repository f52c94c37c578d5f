"""castbench compare: ratios of median step times and a Mann-Whitney U test, on synthetic
runs (no measurement needed)."""

import json

import numpy as np
import pytest

from castbench.cli import main
from castbench.compare import compare, load, mann_whitney_u
from castbench.errors import UsageError
from castbench.results import ResultsFolder


def test_mann_whitney_u_matches_scipy_asymptotic_values():
    # scipy.stats.mannwhitneyu(x, y, method="asymptotic") on scipy's documented example
    u, p = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert u == 17 and p == pytest.approx(0.11134688653314041)
    # fully separated 3 against 3: z = 4 / sqrt(5.25), not significant at 0.05
    u, p = mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert u == 0 and p == pytest.approx(0.0808556, rel=1e-5)
    # ties share the average rank and shrink the variance by sum(t^3 - t) / (n (n - 1)):
    # ranks 1.5 1.5 4 4 | 4 7 7 7, U = 11 - 10, var = 16/12 * (9 - 54/56), z = 6.5 / sd
    u, p = mann_whitney_u([1, 1, 2, 2], [2, 3, 3, 3])
    assert u == 1 and p == pytest.approx(0.0470574, rel=1e-5)
    assert mann_whitney_u([1, 1], [1, 1]) == (2.0, 1.0)


def sample_row(batch, samples, backbone="MobileNetV2", mode="train"):
    median = float(np.median(samples))
    return {
        "key": f"{backbone}|32|{batch}|{mode}|float32|auto|gap",
        "backbone": backbone, "input_size": 32, "batch_size": batch, "mode": mode,
        "precision": "float32", "status": "ok", "step_s_median": median,
        "samples_s": [float(s) for s in samples],
    }  # fmt: skip


@pytest.fixture
def runs(tmp_path):
    """BASE and NEW: bs 2 is 30 % slower in NEW, bs 4 is unchanged noise, bs 8 got faster,
    and each side has one configuration the other lacks."""
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.002, 10)  # noqa: E731
    base = ResultsFolder(tmp_path / "base")
    new = ResultsFolder(tmp_path / "new")
    base.add(sample_row(2, 0.100 + noise()))
    new.add(sample_row(2, 0.130 + noise()))
    base.add(sample_row(4, 0.200 + noise()))
    new.add(sample_row(4, 0.200 + noise()))
    base.add(sample_row(8, 0.400 + noise()))
    new.add(sample_row(8, 0.300 + noise()))
    base.add(sample_row(16, 0.8 + noise()))
    new.add(sample_row(2, 0.1 + noise(), mode="infer"))
    new.add({**sample_row(32, [1.0]), "status": "oom", "step_s_median": None})
    return tmp_path / "base", tmp_path / "new"


def test_compare_flags_the_slowed_configuration(runs):
    report = compare(load(runs[0]), load(runs[1]), fail_above=10)
    verdicts = {r["label"]: (r["verdict"], r["failed"]) for r in report["comparisons"]}
    assert verdicts == {
        "MobileNetV2 32px bs 2 train float32": ("slower", True),
        "MobileNetV2 32px bs 4 train float32": ("no change", False),
        "MobileNetV2 32px bs 8 train float32": ("faster", False),
    }
    slowed = report["comparisons"][0]
    assert slowed["ratio"] == pytest.approx(1.3, rel=0.05) and slowed["p_value"] < 0.001
    assert report["only_in_base"] == ["MobileNetV2 32px bs 16 train float32"]
    assert report["only_in_new"] == ["MobileNetV2 32px bs 2 infer float32"]
    assert report["failed"]
    # a 30 % slow-down under a 50 % threshold does not fail
    assert not compare(load(runs[0]), load(runs[1]), fail_above=50)["failed"]


def test_compare_command_exits_1_above_the_threshold(runs, capsys):
    base, new = map(str, runs)
    assert main(["compare", base, new]) == 0  # without --fail-above: report only
    text = capsys.readouterr().out
    assert "slower" in text and "faster" in text and "only in BASE" in text
    assert main(["compare", base, new, "--fail-above", "10"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["compare", base, new, "--fail-above", "50"]) == 0
    capsys.readouterr()
    assert main(["compare", base, new, "--fail-above", "10", "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["failed"] and len(payload["comparisons"]) == 3
    assert main(["compare", base, base, "--fail-above", "0"]) == 0  # a run against itself


def benchmark_json(path, median, samples=None):
    stats = {"median": median, "mean": median}
    if samples is not None:
        stats["data"] = samples
    payload = {
        "machine_info": {}, "commit_info": {},
        "benchmarks": [{
            "name": "test_step[MobileNetV2-32-2-train]",
            "stats": stats,
            "extra_info": {"backbone": "MobileNetV2", "input_size": 32, "batch_size": 2,
                           "mode": "train", "precision": "float32"},
        }, {"name": "test_unrelated", "stats": {"median": 1.0}, "extra_info": {}}],
    }  # fmt: skip
    path.write_text(json.dumps(payload))
    return path


def test_pytest_benchmark_json_compares_with_a_results_folder(runs, tmp_path):
    rng = np.random.default_rng(1)
    samples = list(0.15 + rng.normal(0, 0.002, 10))
    new = benchmark_json(tmp_path / "bench.json", float(np.median(samples)), samples)
    report = compare(load(runs[0]), load(new), fail_above=20)
    assert [(r["label"], r["verdict"], r["failed"]) for r in report["comparisons"]] == [
        ("MobileNetV2 32px bs 2 train float32", "slower", True),
    ]  # fmt: skip
    # without raw samples only the ratio is known: the verdict says so
    bare = benchmark_json(tmp_path / "bare.json", 0.15)
    only = compare(load(runs[0]), load(bare))["comparisons"][0]
    assert only["p_value"] is None and only["verdict"] == "slower"
    assert main(["compare", str(runs[0] / "timing.json"), str(new)]) == 0


def test_unreadable_runs_are_usage_errors(tmp_path, capsys):
    with pytest.raises(UsageError, match="no such"):
        load(tmp_path / "missing")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(UsageError, match="neither"):
        load(tmp_path / "other.json")
    (tmp_path / "timing.json").write_text(json.dumps({"schema": "castbench.timing", "version": 9}))
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "schema version 9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "other"),
    [("step", "api"), ("trainable", "head"), ("head", "dense"), ("strategy", "mirrored"),
     ("weights", "imagenet"), ("jit_compile", False)],
)  # fmt: skip
def test_runs_that_differ_in_any_measured_field_are_never_paired(tmp_path, field, other):
    """Each such row is listed as found on one side only, and nothing is compared."""
    rng = np.random.default_rng(3)
    base, new = ResultsFolder(tmp_path / "base"), ResultsFolder(tmp_path / "new")
    row = sample_row(2, 0.1 + rng.normal(0, 0.002, 10))
    base.add(row)
    new.add({**row, field: other, "key": row["key"] + f"|{field}", "replicas": 2})
    report = compare(load(tmp_path / "base"), load(tmp_path / "new"))
    assert report["comparisons"] == []
    assert len(report["only_in_base"]) == len(report["only_in_new"]) == 1
    assert report["only_in_base"] != report["only_in_new"]  # the labels tell them apart


def test_between_process_medians_are_tested_and_p_values_are_holm_adjusted(tmp_path):
    rng = np.random.default_rng(5)
    base, new = ResultsFolder(tmp_path / "base"), ResultsFolder(tmp_path / "new")
    for batch, change in ((2, 1.25), (4, 1.0), (8, 1.0)):
        for folder, factor in ((base, 1.0), (new, change)):
            medians = list(0.1 * batch * factor * (1 + rng.normal(0, 0.01, 3)))
            row = sample_row(batch, medians)
            folder.add({**row, "process_medians_s": medians, "processes": 3})
    report = compare(load(tmp_path / "base"), load(tmp_path / "new"))
    assert report["correction"] == "holm"
    assert set(report["tests"]) == {"processes"}
    by_batch = {r["label"].split(" bs ")[1].split()[0]: r for r in report["comparisons"]}
    assert by_batch["2"]["verdict"] == "slower" and by_batch["2"]["test"] == "processes"
    raw = sorted(r["p_value"] for r in report["comparisons"])
    holm_adjusted = sorted(r["p_holm"] for r in report["comparisons"])
    assert holm_adjusted[0] == pytest.approx(min(1.0, 3 * raw[0]))  # smallest of three: x3
    assert all(h >= p for h, p in zip(holm_adjusted, raw, strict=True))
    assert by_batch["4"]["verdict"] == by_batch["8"]["verdict"] == "no change"


def test_holm_keeps_many_unchanged_configurations_from_being_called_changed(tmp_path):
    """Twenty configurations of pure noise: without correction about one would be 'changed'
    at alpha 0.05; with Holm none is."""
    rng = np.random.default_rng(11)
    base, new = ResultsFolder(tmp_path / "base"), ResultsFolder(tmp_path / "new")
    for batch in range(1, 21):
        base.add(sample_row(batch, 0.1 + rng.normal(0, 0.002, 10)))
        new.add(sample_row(batch, 0.1 + rng.normal(0, 0.002, 10)))
    report = compare(load(tmp_path / "base"), load(tmp_path / "new"))
    assert any(r["p_value"] < 0.05 for r in report["comparisons"])  # the raw test alone errs
    assert {r["verdict"] for r in report["comparisons"]} == {"no change"}
    assert "Holm" in main_output(tmp_path)


def main_output(tmp_path):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(["compare", str(tmp_path / "base"), str(tmp_path / "new")])
    return buffer.getvalue()
