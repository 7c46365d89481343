"""BatchNorm on TensorFlow's fused kernel equals keras.layers.BatchNormalization: training outputs,
gradients of the input, gamma and beta, the moving statistics, and the inference path."""

import keras
import numpy as np
import pytest

from keras_arcface.backbones.fused_batch_norm import BatchNormalization as FusedBatchNormalization
from tests.testing import value_and_grads


def _pair(scale=True, dtype="float32"):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 5, 4, 6)) * 2 + 1).astype("float32")
    layers = [cls(epsilon=1e-5, momentum=0.9, scale=scale, dtype=dtype)
              for cls in (keras.layers.BatchNormalization, FusedBatchNormalization)]
    for layer in layers:
        layer.build(x.shape)
    weights = [rng.normal(size=w.shape).astype("float32") + (i in (0, 3)) * 2
               for i, w in enumerate(layers[0].get_weights())]
    weights[-1] = np.abs(weights[-1])  # a moving variance
    for layer in layers:
        layer.set_weights(weights)
    return x, layers


def _training_step(layer, x):
    trainable = [np.asarray(v) for v in layer.trainable_variables]
    non_trainable = [np.asarray(v) for v in layer.non_trainable_variables]
    moving = {}

    def loss(inputs, *variables):
        outputs, updated = layer.stateless_call(list(variables), non_trainable, inputs, training=True)
        moving["values"] = updated
        outputs = keras.ops.cast(outputs, "float32")
        return keras.ops.sum(outputs * keras.ops.sin(outputs))

    value, grads = value_and_grads(loss, x, *trainable)
    return value, grads, [np.asarray(v) for v in moving["values"]]


@pytest.mark.parametrize("scale", [True, False])
def test_fused_training_step_equals_keras(scale):
    x, (reference, fused) = _pair(scale)
    want_value, want_grads, want_moving = _training_step(reference, x)
    value, grads, moving = _training_step(fused, x)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for got, want in zip(grads + moving, want_grads + want_moving):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fused(x, training=True)), np.asarray(reference(x, training=True)),
                               rtol=1e-5, atol=1e-5)
    for layer in (reference, fused):  # the moving statistics the calls above updated
        layer.set_weights(reference.get_weights())
    np.testing.assert_array_equal(np.asarray(fused(x)), np.asarray(reference(x)))  # inference: Keras' code


def test_fused_under_mixed_precision_and_xla():
    import tensorflow as tf

    x, (reference, _) = _pair()
    fused = FusedBatchNormalization(epsilon=1e-5, momentum=0.9, dtype="mixed_bfloat16")
    fused.build(x.shape)
    fused.set_weights(reference.get_weights())
    out = tf.function(lambda inputs: fused(inputs, training=True), jit_compile=True)(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(tf.cast(out, "float32")), np.asarray(reference(x, training=True)),
                               rtol=0.02, atol=0.03)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=0.01, atol=0.01)


def test_frozen_and_float64_take_keras_code():
    x, (reference, fused) = _pair()
    fused.trainable = reference.trainable = False
    np.testing.assert_array_equal(np.asarray(fused(x, training=True)), np.asarray(reference(x, training=True)))
    assert not fused._fused_applies(x.astype("float64"), True, None)
    restored = keras.layers.deserialize(keras.layers.serialize(fused))
    assert type(restored) is FusedBatchNormalization and restored.get_config() == fused.get_config()
