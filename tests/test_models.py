import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from castbench import backbones
from castbench.errors import UsageError
from castbench.models import build_model, compile_for_training, count_params, keras_cache_dir
from castbench.profile import describe_model
from castbench.spec import ModelSpec


def small_size(name: str) -> int:
    return max(backbones.get(name).min_size, 64)


@pytest.mark.parametrize("name", backbones.names())
def test_every_backbone_builds_small_and_counts_agree_with_keras(name):
    size = small_size(name)
    model = build_model(ModelSpec(name, size=size))
    record = backbones.get(name)
    base = model.layers[1]  # the Keras application itself, nested as in the seed's summary
    assert base.name.lower().startswith(record.key[:5])
    channels = base.output_shape[-1]
    # the GAP head adds Dense(channels -> 1): channels weights + 1 bias
    assert count_params(model).total == base.count_params() + channels + 1
    out = model.predict_on_batch(np.zeros((2, size, size, 3), "float32"))
    assert out.shape == (2, 1)
    assert np.all((out >= 0) & (out <= 1))
    keras.backend.clear_session()


def test_efficientnetb4_dense_head_matches_the_seed_exactly():
    counts = count_params(build_model(ModelSpec("efficientnetb4", size=512, head="dense")))
    assert (counts.total, counts.trainable, counts.non_trainable) == (
        19_510_880, 19_385_673, 125_207,
    )  # fmt: skip


def test_efficientnetb4_gap_head_matches_the_seed_exactly():
    assert count_params(build_model(ModelSpec("efficientnetb4", size=512))).total == 17_675_616


def test_dense_head_switches_remove_their_layers():
    layers = lambda spec: {layer.name for layer in build_model(spec).layers}  # noqa: E731
    full = layers(ModelSpec("mobilenetv2", size=32, head="dense"))
    assert {"dense", "dropout"} <= full
    assert "dense" not in layers(ModelSpec("mobilenetv2", size=32, head="dense", dense=False))
    assert "dropout" not in layers(ModelSpec("mobilenetv2", size=32, head="dense", dropout=0))
    assert not {"dense", "dropout"} & layers(ModelSpec("mobilenetv2", size=32))


def test_trainable_head_freezes_the_backbone_and_trains_the_head_alone():
    model = build_model(ModelSpec("mobilenetv2", size=32, trainable="head"))
    compile_for_training(model, learning_rate=0.1)
    base, head = model.layers[1], model.get_layer("defect")
    assert count_params(model).trainable == head.count_params() == base.output_shape[-1] + 1
    before = [np.array(w) for w in (*base.weights, *head.weights)]
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.uniform(-1, 1, (4, 32, 32, 3)), np.array([[0.0], [1.0], [0.0], [1.0]]))
    after = [np.array(w) for w in (*base.weights, *head.weights)]
    n_base = len(base.weights)
    # backbone kernels and batch-norm statistics stay put; the head's weights move
    assert all(np.array_equal(b, a) for b, a in zip(before[:n_base], after[:n_base], strict=True))
    assert not np.array_equal(before[n_base], after[n_base])


def test_unknown_trainable_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown --trainable"):
        build_model(ModelSpec("mobilenetv2", size=32, trainable="backbone"))


def test_size_below_minimum_is_a_usage_error():
    with pytest.raises(UsageError, match="at least 75x75"):
        build_model(ModelSpec("inceptionv3", size=64))


def test_unknown_head_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown head"):
        build_model(ModelSpec("mobilenetv2", size=32, head="mlp"))


def test_imagenet_weights_offline_name_the_file_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(UsageError) as info:
        build_model(ModelSpec("resnet50", size=64, weights="imagenet"))
    expected = tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert str(expected) in str(info.value)
    assert keras_cache_dir() == tmp_path / "models"


def test_nasnet_imagenet_weights_need_224(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "nasnet_mobile_no_top.h5").write_bytes(b"")
    with pytest.raises(UsageError, match="224x224"):
        build_model(ModelSpec("nasnetmobile", size=96, weights="imagenet"))


def test_whole_model_weights_file_round_trips(tmp_path):
    spec = ModelSpec("mobilenetv2", size=32)
    original = build_model(spec)
    path = tmp_path / "trained.weights.h5"
    original.save_weights(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    restored = build_model(ModelSpec("mobilenetv2", size=32, weights=str(path)))
    np.testing.assert_allclose(restored.predict_on_batch(x), original.predict_on_batch(x), 1e-5)


def test_backbone_h5_file_loads_into_the_backbone(tmp_path):
    record = backbones.get("mobilenetv2")
    donor = record.build_fn()(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "mobilenet_no_top.h5"
    # the layout of Keras' own ImageNet downloads: legacy HDF5, weights grouped by layer name
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, donor)
    model = build_model(ModelSpec("mobilenetv2", size=32, weights=str(path)))
    base = model.get_layer(donor.name)
    np.testing.assert_array_equal(base.weights[0].numpy(), donor.weights[0].numpy())


def test_missing_and_pickled_weight_files_are_refused(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        build_model(ModelSpec("mobilenetv2", size=32, weights=str(tmp_path / "nope.h5")))
    pickled = tmp_path / "weights.pkl"
    pickled.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(UsageError, match="pickled formats are refused"):
        build_model(ModelSpec("mobilenetv2", size=32, weights=str(pickled)))


def test_weights_for_another_architecture_give_a_clear_error(tmp_path):
    path = tmp_path / "vgg.weights.h5"
    build_model(ModelSpec("vgg16", size=32)).save_weights(path)
    with pytest.raises(UsageError, match="cannot load"):
        build_model(ModelSpec("mobilenetv2", size=32, weights=str(path)))


def test_describe_counts_flops_from_the_graph():
    info = describe_model(ModelSpec("mobilenetv2", size=96))
    # FLOPs of a convnet grow with the pixel count: 4x the pixels, ~4x the FLOPs
    bigger = describe_model(ModelSpec("mobilenetv2", size=192))
    assert info["gflops_per_image"] > 0
    assert 3.5 < bigger["gflops_per_image"] / info["gflops_per_image"] < 4.5
    assert info["params_total"] == bigger["params_total"]
