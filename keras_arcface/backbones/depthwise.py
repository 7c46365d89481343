"""A depthwise convolution that XLA on CPU compiles well: the same layer, weights and numbers as
``keras.layers.DepthwiseConv2D``, computed there as a sum of k x k shifted products.

XLA lowers a depthwise convolution on CPU to a grouped convolution that is far slower than
TensorFlow's own kernel: forward and backward of a 3x3 depthwise conv on a (64, 56, 56, 128) input
take 176 ms in TensorFlow graph mode, 1,153 ms under ``jit_compile=True`` and 3,049 ms on the JAX
backend.  Written as ``sum_ij w_ij * x[i::s, j::s]`` it is nine elementwise products that XLA fuses:
133 ms under TensorFlow's XLA, 426 ms on JAX, but 2,367 ms in graph mode
(``scripts/bench_backbone_layers.py``; ``docs/training.md``, "Training speed").  TensorFlow's graph
mode and GPUs keep the native kernel.

``symmetric_padding=p`` pads p zeros on every side inside the layer
(:mod:`keras_arcface.backbones.padding`).
"""

import math

import keras
from keras import ops

from keras_arcface.backbones.padding import SymmetricPadding
from keras_arcface.compilation import computation_target
from keras_arcface.errors import InputError

#: How :class:`DepthwiseConv2D` (this module's) computes: ``"auto"`` takes the shifted sum where it is
#: faster (XLA on a CPU: TensorFlow under ``jit_compile=True``, the JAX backend on CPU).
DEPTHWISE_IMPLEMENTATIONS = ("auto", "native", "shifted_sum")


def shifted_sum_is_faster():
    """True where the step is being compiled by XLA for a CPU (see the module docstring)."""
    return computation_target() == ("xla", "cpu")


def _same_padding(size, kernel, stride):
    """TensorFlow's SAME padding (before, after) of one axis: the odd zero goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def shifted_sum_depthwise_conv(inputs, kernel, strides, padding):
    """``y[b, h, w, c] = sum_ij kernel[i, j, c, 0] * x[b, s_h h + i, s_w w + j, c]`` (channels last,
    depth multiplier 1, no dilation): the depthwise convolution of Howard et al., MobileNets, 2017,
    as k x k strided slices.  Half-precision inputs are summed in float32."""
    kernel_h, kernel_w = int(kernel.shape[0]), int(kernel.shape[1])
    stride_h, stride_w = strides
    if padding == "same":
        inputs = ops.pad(inputs, [(0, 0), _same_padding(inputs.shape[1], kernel_h, stride_h),
                                  _same_padding(inputs.shape[2], kernel_w, stride_w), (0, 0)])
    height, width = inputs.shape[1], inputs.shape[2]
    out_h, out_w = (height - kernel_h) // stride_h + 1, (width - kernel_w) // stride_w + 1
    dtype = inputs.dtype
    half = keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16")
    total = None
    for i in range(kernel_h):
        for j in range(kernel_w):
            tap = inputs[:, i:i + stride_h * (out_h - 1) + 1:stride_h, j:j + stride_w * (out_w - 1) + 1:stride_w, :]
            term = tap * kernel[i, j, :, 0]
            term = ops.cast(term, "float32") if half else term
            total = term if total is None else total + term
    return ops.cast(total, dtype) if half else total


@keras.saving.register_keras_serializable(package="keras_arcface")
class DepthwiseConv2D(SymmetricPadding, keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` (same weights, same outputs) that computes as
    :func:`shifted_sum_depthwise_conv` where XLA compiles it for a CPU.

    It keeps Keras' class name on purpose: a ``.weights.h5`` keys each layer by its class name, so
    weights saved with Keras' layer load into this one and back.

    ``implementation``: ``"auto"`` (that choice, made when the step is traced), ``"native"`` or
    ``"shifted_sum"``.  ``symmetric_padding``: zeros on every side before a ``"valid"`` convolution
    (the module docstring).  Dilation, a depth multiplier above 1, channels-first data and unknown
    spatial sizes always take the native kernel.
    """

    def __init__(self, *args, implementation="auto", **kwargs):
        super().__init__(*args, **kwargs)
        if implementation not in DEPTHWISE_IMPLEMENTATIONS:
            raise InputError(f"implementation must be one of {DEPTHWISE_IMPLEMENTATIONS}, got {implementation!r}")
        self.implementation = implementation

    def _shifted_sum_applies(self, shape):
        if self.implementation == "native" or self.depth_multiplier != 1 or tuple(self.dilation_rate) != (1, 1):
            return False
        if self.data_format != "channels_last" or shape[1] is None or shape[2] is None:
            return False
        return self.implementation == "shifted_sum" or shifted_sum_is_faster()

    def call(self, inputs, training=None):
        if self.symmetric_padding and training and keras.backend.backend() == "tensorflow" and not (
                self._shifted_sum_applies(self._padded_shape(inputs.shape))):
            import tensorflow as tf

            return self._finish(tf.nn.depthwise_conv2d(inputs, ops.cast(self.kernel, inputs.dtype),
                                                       (1, *self.strides, 1), self._explicit_padding()))
        inputs = self._pad(inputs)
        if not self._shifted_sum_applies(inputs.shape):
            return super().call(inputs)
        return self._finish(shifted_sum_depthwise_conv(inputs, self.kernel, self.strides, self.padding))

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}
