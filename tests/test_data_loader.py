"""The loader on a replica of the Kaggle layout, junk and odd image modes included."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from castbench.data import CastingData, Sample, load_casting, split_validation
from castbench.data.loader import decode_rgb
from castbench.errors import UsageError


def _jpeg(path: Path, value: int = 120, mode: str = "RGB", size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("L", (size, size), value).convert(mode)
    image.save(path, "JPEG" if mode in ("RGB", "L", "CMYK") else "PNG")
    return path


def build_replica(root: Path) -> dict:
    """casting_data/{train,test}/{def_front,ok_front} with real names, junk and odd modes."""
    base = root / "casting_data"
    for n in range(6):
        _jpeg(base / "train" / "def_front" / f"cast_def_0_{n * 7}.jpeg", 90 + n)
    for n in range(5):
        _jpeg(base / "train" / "ok_front" / f"cast_ok_0_{n * 5 + 1}.jpeg", 150 + n)
    for n in range(3):
        _jpeg(base / "test" / "def_front" / f"cast_def_0_{100 + n}.jpeg")
    for n in (11, 12):
        _jpeg(base / "test" / "def_front" / f"new__0_{n}.jpeg")
    for n in range(3):
        _jpeg(base / "test" / "ok_front" / f"cast_ok_0_{200 + n}.jpeg")
    # Odd modes, stored with a .jpeg name the way real downloads are.
    _jpeg(base / "train" / "ok_front" / "cast_ok_0_900.jpeg", mode="CMYK")
    _jpeg(base / "train" / "ok_front" / "cast_ok_0_901.jpeg", mode="L")
    Image.new("RGBA", (40, 40), (10, 20, 30, 128)).save(
        base / "train/ok_front/cast_ok_0_902.jpeg", "PNG"
    )
    Image.new("P", (40, 40), 3).save(base / "train/def_front/cast_def_0_903.jpeg", "PNG")
    # Junk.
    (base / "train" / "def_front" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 64)
    (base / "test" / "ok_front" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 64)
    (base / "train" / "ok_front" / "._cast_ok_0_1.jpeg").write_bytes(b"\x00\x05\x16\x07" * 8)
    noisy = np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)
    truncated = base / "train" / "def_front" / "cast_def_0_999.jpeg"
    Image.fromarray(noisy).convert("RGB").save(truncated, "JPEG")
    truncated.write_bytes(truncated.read_bytes()[:-700])  # a cut-off download
    return {
        "train": (6 + 1, 5 + 3),
        "test": (5, 3),
        "skipped": {".DS_Store", "Thumbs.db", "._cast_ok_0_1.jpeg", "cast_def_0_999.jpeg"},
    }


def test_replica_counts_labels_and_skipped(tmp_path):
    expected = build_replica(tmp_path)
    with pytest.warns(UserWarning) as caught:
        data = load_casting(tmp_path)  # the outer folder holding casting_data/
    assert isinstance(data, CastingData)
    assert data.root == tmp_path / "casting_data"
    for split in ("train", "test"):
        samples = getattr(data, split)
        n_def = sum(s.label for s in samples)
        assert (n_def, len(samples) - n_def) == expected[split]
        for s in samples:
            assert isinstance(s, Sample)
            assert s.label == (1 if s.path.parent.name == "def_front" else 0)
    assert sum(s.path.name.startswith("new__0_") and s.label == 1 for s in data.test) == 2
    assert {p.name for p, _ in data.skipped} == expected["skipped"]
    reasons = dict((p.name, why) for p, why in data.skipped)
    assert "truncated" in reasons["cast_def_0_999.jpeg"]
    assert reasons[".DS_Store"] == "not an image"
    messages = [str(w.message) for w in caught]
    assert all("\n" not in m for m in messages)
    assert any("cast_def_0_999.jpeg" in m for m in messages)
    # The inner folder works too, with the same result.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner = load_casting(tmp_path / "casting_data")
    assert inner.train == data.train and inner.test == data.test


def test_odd_modes_decode_to_rgb(tmp_path):
    build_replica(tmp_path)
    base = tmp_path / "casting_data" / "train"
    for name in (
        "ok_front/cast_ok_0_900.jpeg",
        "ok_front/cast_ok_0_901.jpeg",
        "ok_front/cast_ok_0_902.jpeg",
        "def_front/cast_def_0_903.jpeg",
    ):
        pixels = decode_rgb(base / name, 32)
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def test_empty_or_missing_class_folder_is_usage_error(tmp_path):
    build_replica(tmp_path)
    base = tmp_path / "casting_data"
    for f in (base / "test" / "ok_front").iterdir():
        f.unlink()
    with pytest.raises(UsageError, match="holds no readable images"):
        load_casting(tmp_path)
    (base / "test" / "ok_front").rmdir()
    with pytest.raises(UsageError, match="missing class folder"):
        load_casting(tmp_path)
    with pytest.raises(UsageError, match="not a casting data set"):
        load_casting(base / "train")
    with pytest.raises(UsageError, match="does not exist"):
        load_casting(tmp_path / "nowhere")


def test_split_validation_is_seeded_and_stratified():
    samples = [Sample(Path(f"/d/{i:03d}.jpeg"), int(i % 10 < 6)) for i in range(100)]
    train, val = split_validation(samples, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert sum(s.label for s in val) == 12  # 20 % of each class
    assert not set(train) & set(val)
    assert split_validation(list(reversed(samples)), 0.2, seed=3) == (train, val)
    assert split_validation(samples, 0.2, seed=4)[1] != val
    assert split_validation(samples, 0.0)[1] == []
    with pytest.raises(UsageError):
        split_validation(samples, 1.5)
