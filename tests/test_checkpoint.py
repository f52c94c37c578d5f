"""The epoch checkpoint on a tiny Keras model: what it restores, and what it refuses."""

import numpy as np
import pytest

from castbench.checkpoint import STATE_FILE, EpochCheckpoint
from castbench.errors import UsageError


def tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")


def test_a_checkpoint_restores_weights_and_optimizer_and_training_goes_on_alike(tmp_path):
    x, y = data()
    model = tiny_model()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    checkpoint = EpochCheckpoint(tmp_path, {"lr": 0.01})
    checkpoint.save(model, 1, {"passes": 1})

    fresh = tiny_model()
    fresh.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)  # other steps, same shapes
    fresh.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert EpochCheckpoint(tmp_path, {"lr": 0.01}).restore(fresh) == (1, {"passes": 1})
    assert int(fresh.optimizer.iterations.numpy()) == 4  # one epoch of 4 steps, not two
    for mine, theirs in zip(model.optimizer.variables, fresh.optimizer.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for mine, theirs in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)

    # the Adam moments came back too: the next epoch moves both models alike
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    fresh.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for mine, theirs in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)


def test_only_the_last_epoch_is_kept_and_clear_removes_it(tmp_path):
    x, y = data()
    model = tiny_model()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    checkpoint = EpochCheckpoint(tmp_path, {})
    checkpoint.save(model, 1, {})
    checkpoint.save(model, 2, {})
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted([STATE_FILE, "checkpoint-epoch2.optimizer.npz",
                            "checkpoint-epoch2.weights.h5"])  # fmt: skip
    checkpoint.clear()
    assert list(tmp_path.iterdir()) == []
    assert checkpoint.restore(model) is None  # nothing to go on from: a fresh start


def test_a_checkpoint_of_other_settings_is_refused_in_one_line(tmp_path):
    x, y = data()
    model = tiny_model()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    EpochCheckpoint(tmp_path, {"epochs": 12}).save(model, 1, {})
    with pytest.raises(UsageError, match="other settings") as raised:
        EpochCheckpoint(tmp_path, {"epochs": 6}).restore(tiny_model())
    assert "\n" not in str(raised.value)
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(UsageError, match="cannot resume"):
        EpochCheckpoint(tmp_path, {"epochs": 12}).restore(tiny_model())
