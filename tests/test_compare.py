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
