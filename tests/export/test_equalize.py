"""Cross-layer equalisation (keras_arcface.export.equalize) keeps every registered backbone's function
and evens out the channel ranges that int8 quantizes with one scale; it is what lets Intel's
face-reidentification-retail-0095 pass the int8 weights gate (its real-data figures: the slow tier's
zoo checks and docs/pretrained.md)."""

import keras
import numpy as np
import pytest

from keras_arcface.export.equalize import MAX_SCALE, channel_ranges, equalizable_chains, equalize, equalized_copy
from tests.backbones.test_backbones import TINY

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export needs TensorFlow")


def _spread_batch_norms(model, seed=0):
    """Give every BatchNorm channel scales 100x apart (log-uniform, mean 1) and random shifts and statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            weights = layer.get_weights()
            channels = weights[0].shape[0]
            gamma = 10 ** rng.uniform(-1, 1, channels)
            spread = [gamma / gamma.mean(), rng.normal(size=channels),
                      rng.normal(size=channels), rng.uniform(0.5, 2, channels)]
            layer.set_weights(spread[-len(weights):] if len(weights) < 4 else spread)
    return model


@pytest.mark.parametrize("name, build", TINY, ids=[t[0] for t in TINY])
def test_equalisation_keeps_every_backbone_and_evens_its_ranges(name, build):
    model = _spread_batch_norms(build())
    images = np.random.default_rng(1).normal(size=(8,) + model.input_shape[1:]).astype("float32")
    before = keras.ops.convert_to_numpy(model(images))
    weights = [w.copy() for w in model.get_weights()]
    chains = equalizable_chains(model)
    assert chains, f"{name}: no BatchNorm -> convolution chain found"
    entering = [between[-1] if between else norm for norm, between, _ in chains]
    ranges_before = channel_ranges(model, entering, images)
    copy = equalized_copy(model, images)
    after = keras.ops.convert_to_numpy(copy(images))
    np.testing.assert_allclose(after, before, rtol=2e-3, atol=2e-3 * np.abs(before).max())
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights)), "the model was changed"
    entering = [copy.get_layer(layer.name) for layer in entering]
    for layer, was, observed in zip(entering, ranges_before, channel_ranges(copy, entering, images)):
        # channels under mean / MAX_SCALE (dead ones) are scaled by MAX_SCALE only
        evened = observed[was >= was[was > 0].mean() / MAX_SCALE]
        assert evened.max() / evened.min() < 1.01, (name, layer.name, evened.min(), evened.max())


def test_a_chain_stops_at_a_layer_that_is_not_homogeneous_or_a_tensor_with_two_consumers():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.BatchNormalization(name="bn_sigmoid")(inputs)
    x = keras.layers.Activation("sigmoid")(x)  # sigmoid(s x) != s sigmoid(x)
    x = keras.layers.Conv2D(4, 1, name="after_sigmoid")(x)
    y = keras.layers.BatchNormalization(name="bn_shared")(x)
    z = keras.layers.Add()([keras.layers.Conv2D(4, 1)(y), y])  # y reaches the Add unscaled too
    w = keras.layers.BatchNormalization(name="bn_prelu")(z)
    w = keras.layers.PReLU(shared_axes=[1, 2])(w)
    w = keras.layers.ZeroPadding2D(1)(w)
    w = keras.layers.DepthwiseConv2D(3, name="depthwise")(w)
    model = keras.Model(inputs, w)
    assert [(norm.name, [type(layer).__name__ for layer in between], conv.name)
            for norm, between, conv in equalizable_chains(model)] == [
        ("bn_prelu", ["PReLU", "ZeroPadding2D"], "depthwise")]
    images = np.random.default_rng(0).normal(size=(4, 8, 8, 4)).astype("float32")
    _spread_batch_norms(model)
    before = keras.ops.convert_to_numpy(model(images))
    assert equalize(model, images) == 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), before, rtol=1e-4, atol=1e-4)
