"""The XLA-friendly depthwise convolution equals keras.layers.DepthwiseConv2D: outputs, gradients
of the input and of the kernel, weights, serialization; "auto" takes the shifted sum only under XLA
on a CPU."""

import keras
import numpy as np
import pytest

from keras_arcface.backbones import IResNet, MobileFaceNet
from keras_arcface.backbones.depthwise import DepthwiseConv2D as XlaFriendlyDepthwiseConv2D
from keras_arcface.backbones.depthwise import shifted_sum_is_faster
from keras_arcface.errors import InputError
from tests.testing import keras_base, value_and_grads

CASES = [  # (input height, width, kernel, stride, padding, bias)
    (9, 9, 3, 1, "same", False), (8, 8, 3, 2, "same", False), (9, 7, 3, 2, "same", True),
    (10, 10, 3, 2, "valid", False), (7, 7, 7, 1, "valid", False), (6, 5, (3, 5), 1, "same", True),
]


# Keras canonicalises float64 to float32 in its JAX ops, so on JAX the check is float32 against float32.
DTYPE, TOL = ("float32", 2e-5) if keras.backend.backend() == "jax" else ("float64", 1e-10)


def _pair(height, width, kernel, stride, padding, bias, dtype=DTYPE):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, height, width, 5)).astype(dtype)
    reference = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=bias, dtype=dtype)
    shifted = XlaFriendlyDepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=bias, dtype=dtype,
                                         implementation="shifted_sum")
    reference.build(x.shape)
    shifted.build(x.shape)
    weights = [rng.normal(size=w.shape).astype(dtype) for w in reference.get_weights()]
    reference.set_weights(weights)
    shifted.set_weights(weights)
    return x, reference, shifted


def _value_and_grads(layer, x, training=False):
    kernel_index = [v.path for v in layer.trainable_variables].index(layer.kernel.path)

    def loss(inputs, *variables):
        outputs = layer.stateless_call(list(variables), [], inputs, **({"training": True} if training else {}))[0]
        return keras.ops.sum(outputs * outputs * keras.ops.cos(outputs))

    value, grads = value_and_grads(loss, x, *[np.asarray(v) for v in layer.trainable_variables])
    return value, grads[0], grads[1 + kernel_index]


@pytest.mark.backend_neutral
@pytest.mark.parametrize("height, width, kernel, stride, padding, bias", CASES)
def test_shifted_sum_equals_the_native_convolution_forward_and_backward(height, width, kernel, stride, padding,
                                                                         bias):
    """float64 (float32 on JAX), a non-quadratic loss: the output and both gradients agree."""
    x, reference, shifted = _pair(height, width, kernel, stride, padding, bias)
    expected, shifted_out = np.asarray(reference(x)), np.asarray(shifted(x))
    assert shifted_out.shape == expected.shape
    np.testing.assert_allclose(shifted_out, expected, rtol=TOL, atol=TOL)
    for want, got in zip(_value_and_grads(reference, x), _value_and_grads(shifted, x)):
        np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL * np.abs(want).max())


@pytest.mark.backend_neutral
def test_half_precision_sums_in_float32():
    x, reference, shifted = _pair(8, 8, 3, 1, "same", False, dtype="float32")
    half = XlaFriendlyDepthwiseConv2D(3, padding="same", use_bias=False, dtype="mixed_bfloat16",
                                      implementation="shifted_sum")
    half.build(x.shape)
    half.set_weights(reference.get_weights())
    out = half(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(keras.ops.cast(out, "float32")), np.asarray(reference(x)),
                               rtol=0.02, atol=0.05)


def test_auto_takes_the_shifted_sum_only_under_xla_on_a_cpu():
    import tensorflow as tf

    seen = {}

    def probe(x):
        seen[len(seen)] = shifted_sum_is_faster()
        return x

    tf.function(probe, jit_compile=True)(tf.constant(1.0))
    tf.function(probe, jit_compile=False)(tf.constant(1.0))
    assert seen == {0: not tf.config.list_logical_devices("GPU"), 1: False}
    assert not shifted_sum_is_faster()  # eager


@pytest.mark.backend_neutral
def test_on_jax_auto_takes_the_shifted_sum_on_a_cpu():
    if keras.backend.backend() != "jax":
        pytest.skip("checked in the JAX run of the backend-neutral tests")
    import jax

    from keras_arcface.compilation import computation_target

    assert computation_target() == ("xla", jax.default_backend())  # JAX compiles every step
    assert shifted_sum_is_faster() == (jax.default_backend() == "cpu")


def test_auto_under_xla_gives_the_native_numbers():
    import tensorflow as tf

    x, reference, _ = _pair(9, 9, 3, 2, "same", False, dtype="float32")
    auto = XlaFriendlyDepthwiseConv2D(3, strides=2, padding="same", use_bias=False)
    auto.build(x.shape)
    auto.set_weights(reference.get_weights())
    compiled = tf.function(lambda inputs: auto(inputs), jit_compile=True)
    np.testing.assert_allclose(np.asarray(compiled(x)), np.asarray(reference(x)), rtol=1e-5, atol=1e-5)


def test_serialization_round_trip_and_bad_implementation():
    layer = XlaFriendlyDepthwiseConv2D(3, strides=2, implementation="shifted_sum", name="dw")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is XlaFriendlyDepthwiseConv2D
    assert restored.get_config() == layer.get_config()
    with pytest.raises(InputError, match="implementation must be one of .*'fast'"):
        XlaFriendlyDepthwiseConv2D(3, implementation="fast")


def _conv_as_built_before(filters, kernel_size, strides, name, padding=None, groups_depthwise=False,
                          style="symmetric"):
    """blocks.conv as models were built before depthwise convolutions padded inside: a ZeroPadding2D
    layer before every strided symmetric convolution, Keras' DepthwiseConv2D."""
    pad = (kernel_size - 1) // 2 if padding is None else padding
    same_is_symmetric = strides == 1 and isinstance(kernel_size, int) and pad == (kernel_size - 1) // 2
    keras_padding = "same" if pad and (style == "same" or same_is_symmetric) else "valid"
    layers = [keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")] if pad and keras_padding == "valid" else []
    if groups_depthwise:
        layers.append(keras.layers.DepthwiseConv2D(kernel_size, strides, padding=keras_padding, use_bias=False,
                                                   name=name))
    else:
        layers.append(keras.layers.Conv2D(filters, kernel_size, strides, padding=keras_padding, use_bias=False,
                                          name=name))

    def apply(x):
        for layer in layers:
            x = layer(x)
        return x

    return apply


@pytest.mark.parametrize("family", ["mobilefacenet", "iresnet"])
def test_weights_of_the_native_layers_saved_before_load(family, tmp_path, monkeypatch):
    """A MobileFaceNet or IResNet saved with Keras' Conv2D, DepthwiseConv2D, BatchNormalization and
    PReLU and separate ZeroPadding2D layers (as every saved model before) loads into today's and
    computes the same embeddings, in inference and in training."""
    import keras_arcface.backbones.iresnet as iresnet
    import keras_arcface.backbones.mobilefacenet as mobilefacenet

    module, build = {"mobilefacenet": (mobilefacenet, lambda: MobileFaceNet(embedding_size=8, input_shape=(32, 32, 3))),
                     "iresnet": (iresnet, lambda: IResNet(embedding_size=8, input_shape=(32, 32, 3),
                                                          stage_depths=(1, 1, 1, 1), base_width=4))}[family]
    with monkeypatch.context() as patch:
        patch.setattr(module, "conv", _conv_as_built_before)
        before = build()
    native = keras.models.clone_model(before, clone_function=_as_native)
    assert {type(layer).__module__.split('.')[0] for layer in native.layers} == {"keras"}
    assert any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in native.layers)
    model = build()
    assert any(getattr(layer, "symmetric_padding", 0) for layer in model.layers)
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers)
    rng = np.random.default_rng(1)
    native.set_weights([rng.normal(size=w.shape).astype("float32") * 0.1 + (w.ndim == 1)
                        for w in native.get_weights()])
    native.save_weights(tmp_path / "native.weights.h5")
    model.load_weights(tmp_path / "native.weights.h5")
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    for training in (False, True):
        np.testing.assert_allclose(np.asarray(model(x, training=training)), np.asarray(native(x, training=training)),
                                   rtol=1e-4, atol=1e-4)


def _as_native(layer):
    """Keras' own layer for each of ours (Conv2D, DepthwiseConv2D, BatchNormalization, PReLU subclass it)."""
    config, cls = layer.get_config(), type(layer)
    if cls.__module__.startswith("keras_arcface"):
        config.pop("implementation", None)
        cls = keras_base(cls)
    return cls.from_config(config)
