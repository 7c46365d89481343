"""Symmetric zero padding inside a convolution layer: PyTorch's padding of a strided convolution
(k // 2 zeros on every side), which TensorFlow's SAME is not (its odd zero goes right and bottom).

While training on TensorFlow the layer hands the padding to the convolution kernel as explicit
padding instead of padding first (a separate Pad op, and a Slice backwards): a 3x3 stride-2 depthwise
convolution on a (64, 112, 112, 64) input, forward and backward, 514 ms against 1,018 ms; an ordinary
3x3 stride-2 convolution of 64 filters on the same input with oneDNN, 612 ms against 846 ms (the
2-core CPU, the raw ops; ``scripts/bench_backbone_layers.py`` times the layers; ``docs/training.md``,
"Training speed").  Elsewhere
(inference, export, XLA's shifted-sum depthwise convolution, JAX) the layer pads first: the graph a
``ZeroPadding2D`` layer gave, which the TFLite and ONNX exports keep.
"""

from keras import ops

from keras_arcface.errors import InputError


class SymmetricPadding:
    """Mixin for a Keras convolution layer: ``symmetric_padding=p`` zeros on every side of its input,
    before a ``padding="valid"`` convolution of channels-last data."""

    def __init__(self, *args, symmetric_padding=0, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(symmetric_padding, int) or isinstance(symmetric_padding, bool) or symmetric_padding < 0:
            raise InputError(f"symmetric_padding must be an integer >= 0, got {symmetric_padding!r}")
        if symmetric_padding and (self.padding != "valid" or self.data_format != "channels_last"):
            raise InputError(f"symmetric_padding={symmetric_padding} needs padding='valid' and channels_last data, "
                             f"got padding={self.padding!r}, data_format={self.data_format!r}")
        self.symmetric_padding = symmetric_padding

    def _padded_shape(self, input_shape):
        pad = 2 * self.symmetric_padding
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] + pad,
                None if input_shape[2] is None else input_shape[2] + pad, input_shape[3])

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(self._padded_shape(input_shape))

    def _explicit_padding(self):
        """The padding as TensorFlow's convolution kernels take it (batch, height, width, channels)."""
        pad = self.symmetric_padding
        return [[0, 0], [pad, pad], [pad, pad], [0, 0]]

    def _pad(self, inputs):
        """The input padded first (the graph of a ZeroPadding2D layer), or as it is without padding."""
        return ops.pad(inputs, self._explicit_padding()) if self.symmetric_padding else inputs

    def _finish(self, outputs):
        """Bias and activation after a convolution this layer computed itself (as Keras' ``call``)."""
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        config = super().get_config()
        if self.symmetric_padding:  # configs saved before the option have no key
            config["symmetric_padding"] = self.symmetric_padding
        return config
