"""Multiply-accumulate count of a Keras model's convolutions and dense layers (batch 1)."""

import math

import keras


def count_macs(model):
    """MACs of Conv2D, DepthwiseConv2D and Dense layers for one input (BN, PReLU, adds excluded)."""
    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = layer.kernel.shape  # (kh, kw, in, multiplier)
            out = layer.output.shape
            total += math.prod(out[1:3]) * kernel[0] * kernel[1] * out[-1]
        elif isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape  # (kh, kw, in, out)
            out = layer.output.shape
            total += math.prod(out[1:3]) * math.prod(kernel)
        elif isinstance(layer, keras.layers.Dense):
            total += math.prod(layer.kernel.shape)
    return int(total)


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer
