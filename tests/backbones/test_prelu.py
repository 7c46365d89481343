"""The training form of PReLU equals keras.layers.PReLU: outputs bitwise, gradients of the input
and of the slopes (away from x = 0)."""

import keras
import numpy as np
import pytest

from keras_arcface.backbones.prelu import PReLU
from tests.testing import value_and_grads


def _step(layer, x, **training):
    def loss(inputs, alpha):
        outputs = layer.stateless_call([alpha], [], inputs, **training)[0]
        return keras.ops.sum(outputs * keras.ops.cos(outputs))

    return value_and_grads(loss, x, np.asarray(layer.alpha))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_form_equals_keras(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 6)).astype(dtype)
    reference = keras.layers.PReLU(shared_axes=[1, 2], dtype=dtype)
    fast = PReLU(shared_axes=[1, 2], dtype=dtype)
    for layer in (reference, fast):
        layer.build(x.shape)
        layer.set_weights([rng.uniform(-0.5, 1.5, size=(1, 1, 6)).astype(dtype)] if layer is reference
                          else reference.get_weights())
    np.testing.assert_array_equal(np.asarray(fast(x, training=True)), np.asarray(reference(x)))
    np.testing.assert_array_equal(np.asarray(fast(x)), np.asarray(reference(x)))
    layer_dtype = keras.backend.standardize_dtype(fast(x).dtype)  # JAX: float64 becomes float32
    want_value, want_grads = _step(reference, x)
    value, grads = _step(fast, x, training=True)
    np.testing.assert_allclose(value, want_value, rtol=1e-12 if x.dtype == layer_dtype else 1e-6)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12 if x.dtype == layer_dtype else 1e-6, atol=1e-6)


def test_serialization_round_trip():
    layer = PReLU(shared_axes=[1, 2], name="p")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is PReLU and restored.get_config() == layer.get_config()
