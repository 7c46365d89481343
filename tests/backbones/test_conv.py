"""The backbones' Conv2D equals keras.layers.Conv2D: outputs bitwise, and, where its kernel gradient
is computed channels first (training a k x k stride-1 float32 convolution on oneDNN), the gradients
to float32 rounding (``symmetric_padding``: tests/backbones/test_padding.py)."""

import re

import keras
import numpy as np
import pytest

from keras_arcface.backbones import conv as conv_module
from keras_arcface.backbones.conv import Conv2D

needs_onednn = pytest.mark.skipif(not conv_module.channels_first_filter_gradient_is_faster(),
                                  reason="needs TensorFlow with oneDNN on a CPU (TF_ENABLE_ONEDNN_OPTS=1)")


def _pair(rng, padding="same", strides=1, kernel_size=3, use_bias=False, activation=None):
    kwargs = dict(filters=5, kernel_size=kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                  activation=activation)
    reference, layer = keras.layers.Conv2D(**kwargs), Conv2D(**kwargs)
    reference.build((None, 9, 8, 4))
    layer.build((None, 9, 8, 4))
    reference.set_weights([rng.normal(size=w.shape).astype("float32") for w in reference.get_weights()])
    layer.set_weights(reference.get_weights())
    return reference, layer


def _value_and_grads(layer, x, training):
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training) if training else layer(x)
            loss = tf.reduce_sum(y * tf.cos(y))
        return y, tape.gradient(loss, [x, *layer.trainable_variables])

    y, grads = step(tf.constant(x))
    return y.numpy(), [g.numpy() for g in grads]


def _uses_channels_first_gradient(layer, x, training=True, jit_compile=False):
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=training))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    graph = step.get_concrete_function(tf.TensorSpec(x.shape, "float32")).graph
    nchw = [op for op in graph.get_operations()
            if op.type == "Conv2DBackpropFilter" and op.get_attr("data_format") == b"NCHW"]
    # its ops are named under the layer's scope (Keras adds _1 when it re-enters one), so a profile can
    # attribute them to the layer
    assert all(re.search(rf"(^|/){layer.name}(_\d+)?/gradient/", op.name) for op in nchw), [op.name for op in nchw]
    return bool(nchw)


@needs_onednn
@pytest.mark.parametrize("padding, use_bias, activation", [("same", False, None), ("valid", True, "relu")])
def test_channels_first_kernel_gradient_equals_keras(padding, use_bias, activation):
    rng = np.random.default_rng(0)
    reference, layer = _pair(rng, padding=padding, use_bias=use_bias, activation=activation)
    x = rng.normal(size=(3, 9, 8, 4)).astype("float32")
    assert _uses_channels_first_gradient(layer, x)
    want_y, want_grads = _value_and_grads(reference, x, training=False)
    y, grads = _value_and_grads(layer, x, training=True)
    np.testing.assert_array_equal(y, want_y)
    assert len(grads) == len(want_grads) == 2 + use_bias
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@needs_onednn
@pytest.mark.parametrize("strides, kernel_size", [(2, 3), (1, 1)])
def test_strided_and_pointwise_convolutions_keep_the_native_gradient(strides, kernel_size):
    _, layer = _pair(np.random.default_rng(0), strides=strides, kernel_size=kernel_size)
    assert not _uses_channels_first_gradient(layer, np.zeros((3, 9, 8, 4), "float32"))


@needs_onednn
@pytest.mark.parametrize("training, jit_compile", [(False, False), (True, True)])
def test_inference_and_xla_keep_the_native_gradient(training, jit_compile):
    _, layer = _pair(np.random.default_rng(0))
    assert not _uses_channels_first_gradient(layer, np.zeros((3, 9, 8, 4), "float32"), training, jit_compile)


def test_serialization_round_trip():
    layer = Conv2D(4, 3, padding="same", name="c")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is Conv2D and restored.get_config() == layer.get_config()


def test_without_onednn_the_native_gradient(monkeypatch):
    monkeypatch.setattr(conv_module, "onednn_enabled", lambda: False)
    rng = np.random.default_rng(0)
    reference, layer = _pair(rng)
    x = rng.normal(size=(3, 9, 8, 4)).astype("float32")
    assert not _uses_channels_first_gradient(layer, x)
    for got, want in zip(_value_and_grads(layer, x, True)[1], _value_and_grads(reference, x, False)[1]):
        np.testing.assert_array_equal(got, want)
