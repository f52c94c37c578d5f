"""Precise batch norm against numpy: the moving statistics become the pooled mean and variance of
each layer's training-mode input over the batches, with every weight unchanged."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

# A tiny network whose forward pass numpy can repeat: 1x1 convolutions are matrix products, and
# the second batch-norm layer sits inside a nested model (as a backbone's do).
MODEL_AND_REFERENCE = textwrap.dedent(
    """
    import keras
    import numpy as np

    import keras

    from castbench import precise_bn


    def tiny_model():
        keras.utils.set_random_seed(1)
        image = keras.Input((4, 4, 3))
        x = keras.layers.Conv2D(5, 1, name="c1")(image)
        x = keras.layers.BatchNormalization(name="b1")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(2, 1, name="c2")(x)
        x = keras.layers.BatchNormalization(name="b2", momentum=0.9)(x)
        inner = keras.Model(image, x, name="inner")
        pooled = keras.layers.GlobalAveragePooling2D()(inner(image))
        return keras.Model(image, keras.layers.Dense(1)(pooled)), inner


    def batches():
        rng = np.random.default_rng(0)
        return [rng.normal(2.0, 3.0, (n, 4, 4, 3)).astype("float32") for n in (5, 5, 5, 3)]


    def numpy_statistics(inner):
        # Each layer's input in training mode, by hand: b1 normalises with each batch's own
        # statistics before the ReLU and c2.
        w1, c1 = (keras.ops.convert_to_numpy(v) for v in inner.get_layer("c1").weights)
        w2, c2 = (keras.ops.convert_to_numpy(v) for v in inner.get_layer("c2").weights)
        b1 = inner.get_layer("b1")
        gamma, beta = (keras.ops.convert_to_numpy(v) for v in (b1.gamma, b1.beta))
        first, second = [], []
        for x in batches()[:3]:  # the smaller last batch is skipped
            h = x.astype(np.float64) @ w1[0, 0] + c1
            z = (h - h.mean((0, 1, 2))) / np.sqrt(h.var((0, 1, 2)) + b1.epsilon) * gamma + beta
            first.append(h.reshape(-1, 5))
            second.append((np.maximum(z, 0) @ w2[0, 0] + c2).reshape(-1, 2))
        return {
            "b1": (np.concatenate(first).mean(0), np.concatenate(first).var(0)),
            "b2": (np.concatenate(second).mean(0), np.concatenate(second).var(0)),
        }


    def check():
        model, inner = tiny_model()
        kernels = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        report = precise_bn.recompute(model, batches(), max_batches=10)
        assert (report.layers, report.batches, report.images) == (2, 3, 15)
        for name, (mean, variance) in numpy_statistics(inner).items():
            layer = inner.get_layer(name)
            got_mean = keras.ops.convert_to_numpy(layer.moving_mean)
            got_variance = keras.ops.convert_to_numpy(layer.moving_variance)
            np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(got_variance, variance, rtol=1e-5, atol=1e-5)
            assert "call" not in vars(layer)  # the recording wrapper is gone
        for before, after in zip(kernels, model.trainable_weights, strict=True):
            np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(after))
    """
)


def test_precise_bn_matches_numpy_pooled_statistics():
    namespace: dict = {}
    exec(compile(MODEL_AND_REFERENCE, "precise_bn_reference", "exec"), namespace)
    namespace["check"]()


def test_precise_bn_uses_only_the_first_k_batches():
    namespace: dict = {}
    exec(compile(MODEL_AND_REFERENCE, "precise_bn_reference", "exec"), namespace)
    model, inner = namespace["tiny_model"]()
    import keras

    from castbench import precise_bn

    first_two = namespace["batches"]()[:2]
    report = precise_bn.recompute(model, namespace["batches"](), max_batches=2)
    assert (report.batches, report.images) == (2, 10)
    c1 = inner.get_layer("c1")
    w, b = (keras.ops.convert_to_numpy(v) for v in c1.weights)
    h = np.concatenate([x.astype(np.float64) @ w[0, 0] + b for x in first_two]).reshape(-1, 5)
    moving_mean = keras.ops.convert_to_numpy(inner.get_layer("b1").moving_mean)
    np.testing.assert_allclose(moving_mean, h.mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        precise_bn.recompute(model, first_two, max_batches=0)


def test_precise_bn_under_jax_matches_numpy():
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    script = MODEL_AND_REFERENCE + "\ncheck()\nprint(keras.backend.backend())\n"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "jax"
