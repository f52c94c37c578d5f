"""The input pipeline over the decoded cache: shapes, labels, order, worker threads, reuse,
invalidation."""

import itertools
import os
import warnings

import numpy as np
import pytest

from castbench.data import cache as cache_module
from castbench.data import generate, load_casting
from castbench.data.pipeline import make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("pipe") / "set", n_train=14, n_test=6, seed=2)
    return load_casting(root)


def _collect(dataset):
    xs, ys = zip(*dataset, strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_shapes_dtypes_labels_and_preprocess(data, tmp_path):
    ds = make_dataset(data.train, 48, 4, preprocess=lambda x: x / 127.5 - 1.0, cache_dir=tmp_path)
    x, y = _collect(ds)
    assert x.shape == (14, 48, 48, 3) and x.dtype == np.float32
    assert y.shape == (14, 1) and y.dtype == np.float32
    assert y[:, 0].tolist() == [float(s.label) for s in data.train]
    assert x.min() >= -1.0 and x.max() <= 1.0
    first = next(iter(ds))[0]
    assert first.shape == (4, 48, 48, 3)


def test_keras_preprocess_runs_in_the_pipeline(data, tmp_path):
    from keras.applications import resnet50

    x, _ = _collect(make_dataset(data.test, 40, 3, preprocess=resnet50.preprocess_input,
                                 cache_dir=tmp_path))  # fmt: skip
    assert x.shape == (6, 40, 40, 3) and x.min() < 0  # caffe: BGR, mean-subtracted


def test_shuffle_and_augment_are_seeded(data, tmp_path):
    def run(seed):
        return _collect(make_dataset(data.train, 32, 5, augment="additional", shuffle=True,
                                     seed=seed, cache_dir=tmp_path))  # fmt: skip

    (xa, ya), (xb, yb), (xc, _) = run(1), run(1), run(2)
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not np.allclose(xa, xc)
    ds = make_dataset(data.train, 32, 5, augment="additional", seed=1, cache_dir=tmp_path)
    first, second = _collect(ds)[0], _collect(ds)[0]
    assert not np.allclose(first, second)  # each pass (epoch) draws new augmentations


def test_repeat_runs_forever(data, tmp_path):
    ds = make_dataset(data.test, 32, 4, repeat=True, shuffle=True, cache_dir=tmp_path)
    batches = list(itertools.islice(ds, 5))  # 20 images from a set of 6: four passes
    assert all(len(x) == 4 for x, _ in batches)  # across passes, every batch is full
    labels = np.concatenate([y for _, y in batches])[:18, 0].reshape(3, 6)
    assert all(sorted(row) == sorted(s.label for s in data.test) for row in labels)


def test_batches_do_not_depend_on_threads_or_on_who_reads_them(data, tmp_path):
    def batches(workers):
        return make_dataset(data.train, 32, 4, augment="additional", shuffle=True, seed=3,
                            cache_dir=tmp_path, workers=workers)  # fmt: skip

    one, many = _collect(batches(1)), _collect(batches(4))
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])
    indexed = batches(4)  # fit reads a pass by index, then ends it
    by_index = [indexed[i] for i in range(len(indexed))]
    indexed.on_epoch_end()
    np.testing.assert_array_equal(np.concatenate([x for x, _ in by_index]), one[0])
    assert not np.allclose(indexed[0][0], one[0][:4])  # the next pass draws anew
    # unshuffled, the order is the files'
    x, y = _collect(make_dataset(data.train, 32, 4, cache_dir=tmp_path))
    assert y[:, 0].tolist() == [float(s.label) for s in data.train]
    with pytest.raises(IndexError):
        indexed[len(indexed)]


def test_fit_and_evaluate_take_the_pipeline(data, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation="sigmoid")])  # fmt: skip
    model.compile("adam", "binary_crossentropy")
    train = make_dataset(data.train, 16, 4, augment="flip", shuffle=True, cache_dir=tmp_path,
                         preprocess=lambda x: x / 255.0, workers=2)  # fmt: skip
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and train.passes >= 2  # a new pass per epoch
    assert np.isfinite(model.evaluate(train, verbose=0))


def test_cache_is_reused_and_invalidated(data, tmp_path, monkeypatch):
    decoded = []
    original = cache_module.loader.decode_rgb

    def counting(path, size=None, resample="nearest"):
        decoded.append(path)
        return original(path, size, resample)

    monkeypatch.setattr(cache_module.loader, "decode_rgb", counting)
    samples = data.test
    store = cache_module.decoded_store(samples, 36, tmp_path)
    assert store.built and len(decoded) == len(samples)
    assert store.images.shape == (6, 36, 36, 3) and store.images.dtype == np.uint8
    again = cache_module.decoded_store(samples, 36, tmp_path)
    assert not again.built and len(decoded) == len(samples)  # no second decode
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(again.images, store.images)
    make_dataset(samples, 36, 2, cache_dir=tmp_path)
    assert len(decoded) == len(samples)
    # Touch one file: a new store is built and the stale one removed.
    path = samples[0].path
    stamp = os.stat(path)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 5_000_000_000))
    rebuilt = cache_module.decoded_store(samples, 36, tmp_path)
    assert rebuilt.built and rebuilt.path != store.path and not store.path.exists()
    # Another size is another store.
    assert cache_module.decoded_store(samples, 30, tmp_path).built


def test_undecodable_file_is_left_out(data, tmp_path):
    import shutil

    from castbench.data.loader import Sample

    broken = tmp_path / "cast_def_0_1.jpeg"
    shutil.copy(data.test[0].path, broken)
    broken.write_bytes(broken.read_bytes()[:300] + b"\xff\xd9")
    samples = [Sample(broken, 1)] + list(data.test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = _collect(make_dataset(samples, 32, 4, cache_dir=tmp_path / "c"))
    assert len(x) == 6 and any("cast_def_0_1.jpeg" in str(w.message) for w in caught)


def test_unknown_preset_is_usage_error(data, tmp_path):
    from castbench.errors import UsageError

    with pytest.raises(UsageError, match="unknown augmentation preset"):
        make_dataset(data.test, 32, 2, augment="cutmix", cache_dir=tmp_path)
