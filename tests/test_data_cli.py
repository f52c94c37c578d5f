"""``castbench data synth|check`` and ``castbench augment preview`` through the CLI."""

import json

import pytest

from castbench.cli import main


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "set"
    assert main(["data", "synth", str(out), "--train", "10", "--test", "8", "--seed", "3"]) == 0
    return out


def test_synth_and_check_json(synth_root, capsys):
    capsys.readouterr()
    assert main(["data", "check", str(synth_root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    counts = report["counts"]
    assert sum(counts["train"].values()) == 10 and sum(counts["test"].values()) == 8
    assert counts["train"]["def_front"] == 6 and counts["test"]["def_front"] == 5
    assert report["sizes"] == {"300x300": 18} and report["modes"] == {"RGB": 18}
    assert report["skipped"] == []


def test_check_text_lists_skipped(synth_root, capsys):
    junk = synth_root / "train" / "ok_front" / ".DS_Store"
    junk.write_bytes(b"\x00\x00\x00\x01Bud1")
    try:
        assert main(["data", "check", str(synth_root)]) == 0
        out = capsys.readouterr().out
        assert "skipped: 1" in out and ".DS_Store: not an image" in out
    finally:
        junk.unlink()


def test_missing_layout_is_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a casting data set" in err[0]
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    assert main(["data", "synth", str(tmp_path / "x"), "--train", "1"]) == 2


def test_augment_preview(synth_root, tmp_path, capsys):
    out = tmp_path / "all.png"
    assert main(["augment", "preview", "--data", str(synth_root), "--preset", "all",
                 "--size", "64", "--out", str(out)]) == 0  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = tmp_path / "one.png"
    assert main(["augment", "preview", "--data", str(synth_root), "--preset", "no-rotation",
                 "--size", "64", "--out", str(one)]) == 0  # fmt: skip
    assert one.stat().st_size > 1000
    assert main(["augment", "preview", "--data", str(synth_root), "--preset", "bogus"]) == 2
    assert "choose from: none, default" in capsys.readouterr().err
