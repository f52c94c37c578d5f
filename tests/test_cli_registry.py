import json
import subprocess
import sys

import pytest

from castbench import __version__
from castbench.cli import build_parser, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "castbench", *args], capture_output=True, text=True, timeout=300
    )


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert {"backbones", "describe"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: castbench" in capsys.readouterr().out


def test_unknown_backbone_is_one_line_and_exit_2():
    result = run_cli("describe", "resnet9000")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and "unknown backbone 'resnet9000'" in lines[0]
    assert "Traceback" not in result.stderr


def test_too_small_size_is_exit_2(capsys):
    assert main(["describe", "xception", "--size", "40"]) == 2
    assert "at least 71x71" in capsys.readouterr().err


def test_describe_json_reports_the_seed_counts(capsys):
    code = main(["describe", "EfficientNetB4", "--head", "dense", "--size", "512", "--json"])
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params_total"] == 19_510_880
    assert info["params_trainable"] == 19_385_673
    assert info["params_non_trainable"] == 125_207
    assert info["gflops_per_image"] > 10


def test_backbones_lists_all_ten_quickly(capsys):
    assert main(["backbones", "--no-params", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10 and rows[-1]["native_size"] == 380
