"""The synthetic stand-in: layout, names, counts, reproducibility, no brightness shortcut."""

import hashlib
import warnings

import numpy as np
import pytest
from PIL import Image

from castbench.data import default_synthetic_set, generate, load_casting
from castbench.data.synth import counts_for
from castbench.errors import UsageError


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.jpeg")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "a", n_train=40, n_test=30, seed=5)


def test_layout_names_and_format(small_set):
    data = load_casting(small_set)
    assert not data.skipped
    assert len(data.train) == 40 and len(data.test) == 30
    names = [s.path.name for s in data.train + data.test]
    assert all(n.startswith(("cast_def_0_", "cast_ok_0_", "new__0_")) for n in names)
    assert all(n.startswith("new__0_") == False for n in (s.path.name for s in data.train))  # noqa: E712
    new = [s for s in data.test if s.path.name.startswith("new__0_")]
    assert new and all(s.label == 1 for s in new)
    with Image.open(data.train[0].path) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (300, 300)
        pixels = np.asarray(image)
    assert np.abs(pixels[..., 0].astype(int) - pixels[..., 2]).max() <= 3  # grey stored as RGB


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small_set):
    again = generate(tmp_path / "b", n_train=40, n_test=30, seed=5)
    assert _digest(again) == _digest(small_set)
    other = generate(tmp_path / "c", n_train=40, n_test=30, seed=6)
    assert _digest(other) != _digest(small_set)


def test_worker_processes_write_the_same_bytes(tmp_path, small_set):
    parallel = generate(tmp_path / "p", n_train=40, n_test=30, seed=5, workers=2)
    assert _digest(parallel) == _digest(small_set)  # the fixture rendered in this process


def test_counts_mirror_the_seed():
    small = counts_for("small")
    assert (small["train"].defect, small["train"].ok) == (376, 288)
    assert (small["test"].defect, small["test"].ok, small["test"].new_defects) == (45, 26, 4)
    full = counts_for("full")
    assert (full["train"].defect, full["train"].ok) == (3758, 2875)
    assert (full["test"].defect, full["test"].ok, full["test"].new_defects) == (453, 262, 37)
    with pytest.raises(UsageError):
        counts_for("huge")


def test_refuses_to_overwrite(small_set):
    with pytest.raises(UsageError, match="already holds images"):
        generate(small_set, n_train=4, n_test=4)


def _auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return greater + 0.5 * ties


def test_mean_brightness_does_not_separate_the_classes(tmp_path):
    root = generate(tmp_path / "bright", n_train=120, n_test=2, seed=11)
    data = load_casting(root)
    labels = np.array([s.label for s in data.train])
    means = np.array(
        [np.asarray(Image.open(s.path).convert("L"), float).mean() for s in data.train]
    )
    assert 0.3 < _auc(means, labels) < 0.7


def test_default_set_is_generated_once(tmp_path, monkeypatch):
    import castbench.data.synth as synth

    monkeypatch.setenv("CASTBENCH_CACHE", str(tmp_path))
    calls = []

    def tiny(out, n_train=None, n_test=None, seed=0, scale="small"):
        calls.append(out)
        return original(out, n_train=6, n_test=4, seed=seed, scale=scale)

    original = synth.generate
    monkeypatch.setattr(synth, "generate", tiny)
    first = default_synthetic_set()
    second = default_synthetic_set()
    assert first == second and len(calls) == 1
    assert first.parent == tmp_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_casting(first).train) == 6
