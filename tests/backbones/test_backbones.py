"""Backbones: published sizes and MACs, float32 embeddings, serialization, float64 gradients."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.backbones import BACKBONES, IResNet, MobileFaceNet, SFace, count_macs, get_backbone
from tests.testing import value_and_grads


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_mobilefacenet_matches_the_paper():
    """Chen et al. 2018: 0.99M parameters, 221M multiply-adds at 112x112, 128-d."""
    model = MobileFaceNet()
    weights = sum(int(np.prod(v.shape)) for v in model.trainable_variables if "prelu" not in v.path)
    assert weights == 995_584 and weights < 1_000_000  # convolutions and BatchNorm scale/offset
    assert _trainable(model) == 1_003_136  # plus 7,552 PReLU slopes
    assert count_macs(model) == pytest.approx(221e6, rel=0.005)
    assert model.output_shape == (None, 128)
    assert MobileFaceNet(embedding_size=512).output_shape == (None, 512)


@pytest.mark.parametrize("depth, params_m, gmacs", [(18, 24.0, 2.61), (34, 34.1, 4.46), (50, 43.6, 6.31),
                                                     (100, 65.2, 12.09)])
def test_iresnet_sizes_match_insightface(depth, params_m, gmacs):
    model = get_backbone(f"iresnet{depth}")
    assert _trainable(model) / 1e6 == pytest.approx(params_m, rel=0.003)
    assert count_macs(model) / 1e9 == pytest.approx(gmacs, rel=0.003)
    assert model.output_shape == (None, 512)


def test_sface_matches_the_opencv_zoo_graph():
    """face_recognition_sface_2021dec: 9,667,074 parameters, 2 of them its input normalisation."""
    model = SFace()
    assert sum(int(np.prod(v.shape)) for v in model.weights) == 9_667_072
    assert model.output_shape == (None, 128)
    assert [layer.epsilon for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)][-2:] == [
        2e-5, 2e-5]


def test_mobilefacenet_variants_of_the_published_ports():
    """MobileFaceNet_TF (the reference .tflite): TensorFlow padding and the separable convolutions'
    extra 1x1 convs; the parameters differ only by those two convs and their BatchNorms."""
    plain, ported = MobileFaceNet(embedding_size=192), MobileFaceNet(embedding_size=192, padding="same",
                                                                     separable_pointwise=True)
    extra = (64 * 64 + 2 * 64) + (512 * 512 + 2 * 512)
    assert _trainable(ported) - _trainable(plain) == extra
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D)
                   for layer in ported.layers if "gdconv" not in layer.name)
    assert MobileFaceNet.from_config(ported.get_config()).get_config() == ported.get_config()
    assert "padding" not in plain.get_config()  # configs saved before the variants still load the same


def test_mobilefacenet_se_is_intels_face_reidentification_retail_0095():
    """Intel's IR holds 1,106,814 numbers (1.107M parameters in its documentation): the convolutions,
    one bias a BatchNorm folded into them, the PReLU slopes (one a layer), the squeeze-excitation
    convolutions' biases and the image's per-channel scale and shift."""
    model = get_backbone("mobilefacenet_se", embedding_size=256, input_shape=(128, 128, 3))
    assert model.name == "mobilefacenet_se" and model.output_shape == (None, 256)
    folded = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.PReLU)):
            folded += sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        elif isinstance(layer, keras.layers.BatchNormalization):  # a bias, and the image's scale too
            folded += int(layer.beta.shape[0]) * (2 if layer.name == "input_bn" else 1)
    assert folded == 1_106_814
    prelus = [layer for layer in model.layers if isinstance(layer, keras.layers.PReLU)]
    assert len(prelus) == 48 and all(tuple(layer.alpha.shape) == (1, 1, 1) for layer in prelus)
    assert sum(isinstance(layer, keras.layers.Multiply) for layer in model.layers) == 15  # an SE block a bottleneck
    assert count_macs(model) == pytest.approx(288.7e6, rel=0.001)  # Intel: 0.588 GFLOPs
    plain = MobileFaceNet(embedding_size=256, input_shape=(128, 128, 3))  # the same table without the options
    assert [layer.name for layer in plain.layers if isinstance(layer, keras.layers.DepthwiseConv2D)] == [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    config = model.get_config()
    assert {key: config[key] for key in ("squeeze_excitation", "shared_prelu", "input_batch_norm",
                                         "embedding_batch_norm")} == {
        "squeeze_excitation": 8, "shared_prelu": True, "input_batch_norm": True, "embedding_batch_norm": False}
    assert "squeeze_excitation" not in plain.get_config()  # configs saved before the options load the same


@pytest.mark.parametrize("shape", [(96, 112, 3), (112, 96, 3), (64, 128, 3)])
def test_non_square_inputs_give_the_embedding_size(shape):
    """GDConv's kernel is the final map in each axis (it was height // 16 in both)."""
    for model in (MobileFaceNet(embedding_size=128, input_shape=shape), SFace(embedding_size=64, input_shape=shape,
                                                                                width=0.125)):
        assert model.output_shape == (None, model.embedding_size)
        x = np.zeros((1,) + shape, "float32")
        assert ops.convert_to_numpy(model(x)).shape == (1, model.embedding_size)


def test_get_backbone_reports_errors_of_the_constructor_as_they_are(monkeypatch):
    def broken(**params):
        raise KeyError("inside the constructor")

    monkeypatch.setitem(BACKBONES, "broken", broken)
    with pytest.raises(KeyError, match="inside the constructor"):  # not "unknown backbone"
        get_backbone("broken")


def test_registry_and_errors():
    assert set(BACKBONES) == {"mobilefacenet", "mobilefacenet_se", "sface", "iresnet18", "iresnet34", "iresnet50",
                              "iresnet100"}
    with pytest.raises(ValueError, match="unknown backbone"):
        get_backbone("resnet")
    with pytest.raises(ValueError, match="divisible by 16"):
        MobileFaceNet(input_shape=(100, 100, 3))
    with pytest.raises(ValueError, match="depth"):
        IResNet(depth=20)


def _tiny(name, **variant):
    return lambda **kw: get_backbone(name, **{**BACKBONES.tiny[name], **variant, **kw})


def _distinct_tiny_networks():
    """[(id, build)]: every registered backbone's tiny configuration, each distinct network once.  Names
    registered on one constructor whose tiny networks have the same weights (the IResNet depths: one block a
    stage; their depth tables are checked apart, in test_iresnet_sizes_match_insightface) share one entry."""
    groups = {}
    for name in sorted(BACKBONES):
        groups.setdefault(getattr(BACKBONES[name], "func", BACKBONES[name]), []).append(name)
    distinct = []
    for names in groups.values():
        by_weights = {}
        for name in names:
            key = tuple((w.path.split("/", 1)[-1], tuple(w.shape)) for w in _tiny(name)().weights) if len(names) > 1 \
                else name
            by_weights.setdefault(key, []).append(name)
        distinct += [("=".join(same), _tiny(same[0])) for same in by_weights.values()]
    return sorted(distinct)


#: Every registered backbone in its tiny configuration (the registry's), and the variants of the ports.
TINY = _distinct_tiny_networks() + [
    ("mobilefacenet_tf", _tiny("mobilefacenet", padding="same", separable_pointwise=True)),
]


def test_the_registry_wide_tests_cover_every_registered_backbone():
    assert set(BACKBONES) == {name for ids, _ in TINY for name in ids.split("=")} - {"mobilefacenet_tf"}


def test_every_registered_backbone_has_a_tiny_configuration():
    missing = sorted(set(BACKBONES) - set(BACKBONES.tiny))
    assert not missing, f"register these backbones with tiny={{...}}: {missing}"


@pytest.mark.parametrize("name, build", TINY, ids=[t[0] for t in TINY])
def test_non_square_inputs_of_every_backbone(name, build):
    """Twice as wide as high: the embedding keeps its size (a kernel sized from one axis would not)."""
    height, width, channels = build().input_shape[1:]
    model = build(input_shape=(height, 2 * width, channels))
    x = np.zeros((2, height, 2 * width, channels), "float32")
    assert model.output_shape == (None, model.embedding_size)
    assert ops.convert_to_numpy(model(x)).shape == (2, model.embedding_size)


#: Every tiny network under both mixed policies; the JAX pass takes one policy a network, in turn (every
#: network under a mixed policy, each policy on half the networks).
MIXED = [pytest.param(name, build, policy, id=f"{name}-{policy}",
                      marks=pytest.mark.backend_neutral if index % 2 == policy_index else ())
         for index, (name, build) in enumerate(TINY) for policy_index, policy in enumerate(
             ["mixed_float16", "mixed_bfloat16"])]


@pytest.mark.parametrize("name, build, policy", MIXED)
def test_embedding_is_float32_under_mixed_policies(name, build, policy):
    keras.config.set_dtype_policy(policy)
    model = build()
    x = np.random.default_rng(0).normal(size=(2,) + model.input_shape[1:]).astype("float32")
    out = model(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.all(np.isfinite(ops.convert_to_numpy(out)))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("name, build", TINY, ids=[t[0] for t in TINY])
def test_save_load_round_trips(name, build, tmp_path):
    model = build()
    x = np.random.default_rng(0).normal(size=(3,) + model.input_shape[1:]).astype("float32")
    model(x, training=True)  # move BatchNorm statistics off their initial values
    want = ops.convert_to_numpy(model(x))
    assert type(model).from_config(model.get_config()).get_config() == model.get_config()
    model.save(tmp_path / "b.keras")
    loaded = keras.models.load_model(tmp_path / "b.keras")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), want)
    model.save_weights(tmp_path / "b.weights.h5")
    fresh = build()
    fresh.load_weights(tmp_path / "b.weights.h5")
    np.testing.assert_array_equal(ops.convert_to_numpy(fresh(x)), want)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="Keras canonicalises float64 to float32 in its JAX ops")
@pytest.mark.parametrize("name, build", TINY, ids=[t[0] for t in TINY])
def test_float64_gradients_match_finite_differences(name, build):
    """d(sum of w * embedding)/d(pixels), autodiff vs central differences, in float64, eval mode."""
    keras.config.set_dtype_policy("float64")
    keras.config.set_floatx("float64")  # the Input layer's dtype
    try:
        model = build()
    finally:
        keras.config.set_floatx("float32")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1,) + model.input_shape[1:])
    weights = rng.normal(size=(model.embedding_size,))

    def objective(images):
        return ops.sum(model(images, training=False) * weights)

    _, (grad,) = value_and_grads(objective, x)
    # central differences over every pixel would take minutes; compare 24 random pixels, every shifted
    # image in one batch (inference mode: each row's embedding is its own)
    pixels = rng.choice(x.size, 24, replace=False)
    steps = np.zeros((len(pixels), x.size))
    steps[np.arange(len(pixels)), pixels] = 1e-5
    steps = steps.reshape((len(pixels),) + x.shape[1:])
    per_image = [ops.convert_to_numpy(model(x + sign * steps, training=False)) @ weights for sign in (1, -1)]
    numeric = (per_image[0] - per_image[1]) / 2e-5
    np.testing.assert_allclose(grad.reshape(-1)[pixels], numeric, rtol=1e-5, atol=1e-8)
    keras.config.set_dtype_policy("float32")
    x32 = x.astype("float32")
    model32 = build()
    model32.set_weights([w.astype("float32") for w in model.get_weights()])
    np.testing.assert_allclose(ops.convert_to_numpy(model32(x32)), ops.convert_to_numpy(model(x)),
                               rtol=1e-4, atol=1e-4)
