"""Conv2D whose gradients oneDNN computes fast: the same layer, weights and outputs as
``keras.layers.Conv2D``.

On the AVX2 CPU we train on (x86 without AVX-512), while training on TensorFlow with oneDNN:

- **Kernel gradient channels first.** oneDNN's gradient of a k x k (k > 1) stride-1 convolution with
  respect to its kernel runs a slow direct kernel on channels-last tensors, and an im2col + GEMM one,
  about twice as fast, on channels-first ones. A (64, 112, 112, 64) input to a 3x3 conv of 64 filters
  on the 2-core CPU: forward 440 ms, input gradient 456 ms, kernel gradient 1,410 ms channels-last and
  852 ms channels-first including both transposes (the raw ops). Strided and 1x1 convolutions are
  faster channels-last and keep the native kernel gradient.
- **Input gradient of a convolution padded inside** (``symmetric_padding``, the strided ones): the
  forward pass takes the padding as explicit padding, whose gradients TensorFlow runs in its own
  kernels, not oneDNN's. The input gradient is computed as the ``"valid"`` gradient of the padded
  input, sliced, which oneDNN runs: a 3x3 stride-2 conv on (64, 28, 28, 128) with 256 filters, 97
  against 50 ms; on (64, 112, 112, 64) with 64, 125 against 110 ms (the raw ops, including the slice).
  Its kernel gradient stays TensorFlow's own, which is faster there than oneDNN's on the padded input
  (67 against 79 ms; 177 against 259 ms).

Both give the native gradients to float32 rounding (another summation order);
``scripts/bench_backbone_layers.py`` times the layers; ``docs/training.md``, "Training speed".
Inference, export, XLA, GPUs, other backends and TensorFlow without oneDNN keep the native gradients.

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


def onednn_trains_the_convolutions():
    """True where a training step's convolutions run on oneDNN's CPU kernels in TensorFlow graph or
    eager mode (not XLA, not a GPU)."""
    return computation_target() == ("tensorflow", "cpu") and onednn_enabled()


def conv2d_with_onednn_gradients(inputs, kernel, strides, padding):
    """``tf.nn.conv2d(inputs, kernel, strides, padding)`` (channels last; ``padding`` a string or
    TensorFlow's explicit ``[[0, 0], [top, bottom], [left, right], [0, 0]]``) with the gradients the
    module docstring describes: an explicitly padded convolution's input gradient as the "valid" one of
    the padded input, sliced; a stride-1 k x k convolution's kernel gradient on channels-first
    transposes; the rest TensorFlow's own. They equal the native ones to float32 rounding."""
    import tensorflow as tf

    explicit = not isinstance(padding, str)
    strides = [1, *strides, 1]
    kernel = tf.convert_to_tensor(kernel)  # a tensor, not the variable: custom_gradient then needs no `variables`
    channels_first_filter = not explicit and strides == [1, 1, 1, 1] and tuple(kernel.shape[:2]) != (1, 1)
    native = {"padding": "EXPLICIT", "explicit_paddings": sum(padding, [])} if explicit else {"padding": padding}

    def input_gradient(x, w, dy):
        if not explicit:
            return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=strides,
                                                  **native)
        (top, bottom), (left, right) = padding[1], padding[2]
        padded = tf.shape(x) + tf.constant([0, top + bottom, left + right, 0])
        dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=padded, filter=w, out_backprop=dy, strides=strides,
                                            padding="VALID")
        return dx[:, top:top + tf.shape(x)[1], left:left + tf.shape(x)[2], :]

    def kernel_gradient(x, w, dy):
        if not channels_first_filter:
            return tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                                                   strides=strides, **native)
        return tf.raw_ops.Conv2DBackpropFilter(input=tf.transpose(x, [0, 3, 1, 2]), filter_sizes=tf.shape(w),
                                               out_backprop=tf.transpose(dy, [0, 3, 1, 2]), strides=strides,
                                               padding=padding, data_format="NCHW")

    @tf.custom_gradient
    def convolve(x, w):
        layer_scope = tf.get_current_name_scope()  # the gradient's ops go under the layer's name, as Keras'

        def gradient(dy):
            with tf.name_scope(f"{layer_scope}/" if layer_scope else ""), tf.name_scope("gradient"):
                return input_gradient(x, w, dy), kernel_gradient(x, w, dy)

        return tf.nn.conv2d(x, w, strides, padding), gradient

    return convolve(inputs, kernel)


@keras.saving.register_keras_serializable(package="keras_arcface")
class Conv2D(SymmetricPadding, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (same weights, same outputs) whose gradients, while training a float32
    convolution on oneDNN, are computed by oneDNN's faster kernels (the module docstring);
    ``symmetric_padding`` zeros on every side before a ``"valid"`` convolution.

    It keeps Keras' class name on purpose: a ``.weights.h5`` keys each layer by its class name, so
    weights saved with Keras' layer load into this one and back.
    """

    def _onednn_gradients_apply(self, inputs, training):
        faster_gradient = self.symmetric_padding or (tuple(self.strides) == (1, 1)
                                                     and tuple(self.kernel_size) != (1, 1))
        return (bool(training) and faster_gradient and self.data_format == "channels_last"
                and tuple(self.dilation_rate) == (1, 1) and self.groups == 1
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                and keras.backend.standardize_dtype(self.kernel.dtype) == "float32"
                and onednn_trains_the_convolutions())

    def call(self, inputs, training=None):
        if self._onednn_gradients_apply(inputs, training):
            padding = self._explicit_padding() if self.symmetric_padding else self.padding.upper()
            return self._finish(conv2d_with_onednn_gradients(inputs, self.kernel, self.strides, padding))
        if self.symmetric_padding and training and self.groups == 1 and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return self._finish(tf.nn.conv2d(inputs, ops.cast(self.kernel, inputs.dtype), self.strides,
                                             self._explicit_padding(), dilations=self.dilation_rate))
        return super().call(self._pad(inputs))
