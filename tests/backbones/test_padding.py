"""Every layer with ``symmetric_padding`` (the :class:`SymmetricPadding` mixin, backbones/padding.py)
equals ZeroPadding2D(p) before its Keras base layer with "valid" padding: the output and the gradients of
the input, kernel and bias; its errors name the value; its config carries the key only when it is set.
A new layer with the mixin is covered by being imported in ``keras_arcface.backbones``."""

import inspect

import keras
import numpy as np
import pytest

import keras_arcface.backbones  # noqa: F401  (imports every layer with the mixin)
from keras_arcface.backbones.depthwise import DEPTHWISE_IMPLEMENTATIONS
from keras_arcface.backbones.padding import SymmetricPadding
from keras_arcface.errors import InputError
from tests.testing import keras_base, value_and_grads

# Keras canonicalises float64 to float32 in its JAX ops, so on JAX the check is float32 against float32.
DTYPE, TOL = ("float32", 2e-5) if keras.backend.backend() == "jax" else ("float64", 1e-10)


def _computation_paths(cls):
    """Constructor arguments for each way the class computes: every implementation one can choose
    (the depthwise layer's; "auto" picks one of the others), else its one way."""
    if "implementation" not in inspect.signature(cls).parameters:
        return [{}]
    return [{"implementation": name} for name in DEPTHWISE_IMPLEMENTATIONS if name != "auto"]


#: (layer class, constructor arguments): every computation path of every class with the mixin.
VARIANTS = [(cls, extra) for cls in SymmetricPadding.__subclasses__() for extra in _computation_paths(cls)]


def _make(cls, **kwargs):
    """A 3x3 layer of the class; ordinary convolutions get 5 filters."""
    filters = (5,) if issubclass(cls, keras.layers.Conv2D) else ()
    return cls(*filters, 3, **kwargs)


def test_every_class_with_the_mixin_is_covered():
    paths = {(cls.__name__, extra.get("implementation")) for cls, extra in VARIANTS}
    assert {("Conv2D", None), ("DepthwiseConv2D", "native"), ("DepthwiseConv2D", "shifted_sum")} <= paths, paths


@pytest.mark.backend_neutral
@pytest.mark.parametrize("cls, extra", VARIANTS, ids=lambda v: getattr(v, "__name__", None) or str(v))
@pytest.mark.parametrize("dtype", sorted({DTYPE, "float32"}))
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("height, width, stride", [(8, 8, 2), (9, 7, 2), (6, 6, 1)])
def test_symmetric_padding_inside_equals_a_zero_padding_layer_before(cls, extra, dtype, training, height, width,
                                                                     stride):
    """Explicit padding in the kernel (TensorFlow, training) or a pad first (elsewhere): the numbers of
    ZeroPadding2D(1) + the "valid" Keras layer, forward and the gradients of input, kernel and bias."""
    tol = TOL if dtype == DTYPE else 2e-5
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, height, width, 4)).astype(dtype)
    reference = _make(keras_base(cls), strides=stride, padding="valid", dtype=dtype)
    padded = _make(cls, strides=stride, padding="valid", symmetric_padding=1, dtype=dtype, **extra)
    zero_pad = keras.layers.ZeroPadding2D(1, dtype=dtype)
    reference.build(zero_pad.compute_output_shape(x.shape))
    padded.build(x.shape)
    reference.set_weights([rng.normal(size=w.shape).astype(dtype) for w in reference.get_weights()])
    padded.set_weights(reference.get_weights())
    expected = np.asarray(reference(zero_pad(x)))
    assert padded.compute_output_shape(x.shape) == expected.shape
    np.testing.assert_allclose(np.asarray(padded(x, training=training)), expected, rtol=tol, atol=tol)

    def grads(layer, inputs, **kwargs):
        def loss(inputs, *variables):
            outputs = layer.stateless_call(list(variables), [], inputs, **kwargs)[0]
            return keras.ops.sum(outputs * outputs * keras.ops.cos(outputs))

        return value_and_grads(loss, inputs, *[np.asarray(v) for v in layer.trainable_variables])

    want_value, (want_input, *want_weights) = grads(reference, np.asarray(zero_pad(x)))
    value, (got_input, *got_weights) = grads(padded, x, **({"training": True} if training else {}))
    np.testing.assert_allclose(value, want_value, rtol=tol, atol=tol)
    want_input = want_input[:, 1:-1, 1:-1, :]  # the padding's gradient is the inner slice
    assert len(got_weights) == len(want_weights) == 2  # kernel and bias
    for got, want in zip([got_input, *got_weights], [want_input, *want_weights]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("cls", SymmetricPadding.__subclasses__(), ids=lambda cls: cls.__name__)
def test_errors_name_the_value_and_the_config_round_trips(cls):
    with pytest.raises(InputError, match="symmetric_padding must be an integer >= 0, got -1"):
        _make(cls, symmetric_padding=-1)
    with pytest.raises(InputError, match="symmetric_padding must be an integer >= 0, got True"):
        _make(cls, padding="valid", symmetric_padding=True)
    with pytest.raises(InputError, match="symmetric_padding=1 needs padding='valid'.*got padding='same'"):
        _make(cls, padding="same", symmetric_padding=1)
    assert "symmetric_padding" not in _make(cls).get_config()  # as the Keras layer's configs, saved before
    padded = _make(cls, strides=2, symmetric_padding=1)
    restored = keras.layers.deserialize(keras.layers.serialize(padded))
    assert type(restored) is cls
    assert restored.symmetric_padding == 1 and restored.get_config() == padded.get_config()
