"""Conv2D whose filter gradient oneDNN computes fast: the same layer, weights and outputs as
``keras.layers.Conv2D``.

On the AVX2 CPU we train on (x86 without AVX-512), oneDNN's gradient of a k x k (k > 1) stride-1
convolution with respect to its kernel runs a slow direct kernel on channels-last tensors, and an
im2col + GEMM one, about twice as fast, on channels-first ones. A (64, 112, 112, 64) input to a 3x3
conv of 64 filters on the 2-core CPU: forward 440 ms, input gradient 456 ms, kernel gradient 1,410 ms
channels-last and 852 ms channels-first including both transposes (the raw ops;
``scripts/bench_backbone_layers.py`` times the layers; ``docs/training.md``, "Training speed").
Strided and 1x1 convolutions are faster channels-last and keep the native gradient, as do
inference, export, XLA, GPUs, other backends and TensorFlow without oneDNN.

``symmetric_padding=p`` pads p zeros on every side inside the layer
(:mod:`keras_arcface.backbones.padding`): PyTorch's padding of a strided convolution.
"""

import keras
from keras import ops

from keras_arcface.backbones.padding import SymmetricPadding
from keras_arcface.compilation import computation_target


def onednn_enabled():
    """True where TensorFlow runs its oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS``, read at import)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow without this internal: assume its own kernels
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def channels_first_filter_gradient_is_faster():
    """True where a training step's convolutions run on oneDNN's CPU kernels in TensorFlow graph or
    eager mode (not XLA, not a GPU)."""
    return computation_target() == ("tensorflow", "cpu") and onednn_enabled()


def conv2d_channels_first_filter_gradient(inputs, kernel, padding):
    """``tf.nn.conv2d(inputs, kernel, 1, padding)`` (channels last, stride 1) with the kernel's gradient
    computed on channels-first transposes of the input and the output gradient; the input's gradient
    is TensorFlow's own. The gradients equal the native ones to float32 rounding (another summation
    order)."""
    import tensorflow as tf

    padding = padding.upper()
    kernel = tf.convert_to_tensor(kernel)  # a tensor, not the variable: custom_gradient then needs no `variables`

    @tf.custom_gradient
    def convolve(x, w):
        layer_scope = tf.get_current_name_scope()  # the gradient's ops go under the layer's name, as Keras'

        def gradient(dy):
            with tf.name_scope(f"{layer_scope}/" if layer_scope else ""), tf.name_scope("gradient"):
                dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                                    strides=[1, 1, 1, 1], padding=padding)
                dw = tf.raw_ops.Conv2DBackpropFilter(input=tf.transpose(x, [0, 3, 1, 2]), filter_sizes=tf.shape(w),
                                                     out_backprop=tf.transpose(dy, [0, 3, 1, 2]),
                                                     strides=[1, 1, 1, 1], padding=padding, data_format="NCHW")
            return dx, dw

        return tf.nn.conv2d(x, w, 1, padding), gradient

    return convolve(inputs, kernel)


@keras.saving.register_keras_serializable(package="keras_arcface")
class Conv2D(SymmetricPadding, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (same weights, same outputs) whose kernel gradient, while training a
    float32 k x k stride-1 convolution on oneDNN, is computed channels first (the module docstring);
    ``symmetric_padding`` zeros on every side before a ``"valid"`` convolution.

    It keeps Keras' class name on purpose: a ``.weights.h5`` keys each layer by its class name, so
    weights saved with Keras' layer load into this one and back.
    """

    def _channels_first_gradient_applies(self, inputs, training):
        return (bool(training) and self.data_format == "channels_last" and tuple(self.strides) == (1, 1)
                and tuple(self.dilation_rate) == (1, 1) and self.groups == 1 and tuple(self.kernel_size) != (1, 1)
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                and keras.backend.standardize_dtype(self.kernel.dtype) == "float32"
                and channels_first_filter_gradient_is_faster())

    def call(self, inputs, training=None):
        if self.symmetric_padding and training and self.groups == 1 and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return self._finish(tf.nn.conv2d(inputs, ops.cast(self.kernel, inputs.dtype), self.strides,
                                             self._explicit_padding(), dilations=self.dilation_rate))
        inputs = self._pad(inputs)
        if not self._channels_first_gradient_applies(inputs, training):
            return super().call(inputs)
        return self._finish(conv2d_channels_first_filter_gradient(inputs, self.kernel, self.padding))
