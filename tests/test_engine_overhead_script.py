"""scripts/engine_overhead.py (the staged GPU run's engine stage) on a tiny model: castbench's
two step kinds and the plain loop, each timed, in the report it writes."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "engine_overhead.py"


def test_the_script_times_both_step_kinds_beside_the_plain_loop(tmp_path):
    report = tmp_path / "overhead.json"
    argv = [sys.executable, str(SCRIPT), "--backbone", "mobilenetv2", "--size", "32", "--batch",
            "2", "--mode", "train", "infer", "--rounds", "1", "--steps", "2", "--json",
            str(report)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    modes = json.loads(report.read_text())["modes"]
    assert set(modes) == {"train", "infer"}
    for mode in modes.values():
        assert {"compiled", "api", "keras_loop"} <= set(mode["median_ms"])
        assert all(ms > 0 for ms in mode["median_ms"].values())
        assert mode["ratio_to_keras_loop"]["keras_loop"] == 1.0
