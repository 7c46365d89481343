"""MobileFaceNet (Chen et al., CCBR 2018): a 0.99M-parameter face embedding network."""

import keras

from keras_arcface.backbones.blocks import PADDINGS, batch_norm, conv, float32_output, prelu
from keras_arcface.errors import InputError
from keras_arcface.registry import register_backbone
from keras_arcface.validation import POSITIVE_INTEGER, check_parameters

# (expansion t, output channels c, repeats n, first stride s), Table 1 of the paper.
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def _conv_bn(x, filters, kernel_size, strides, name, activation=True, depthwise=False, padding=None,
             style="symmetric"):
    x = conv(filters, kernel_size, strides, name=f"{name}_conv", padding=padding, groups_depthwise=depthwise,
             style=style)(x)
    x = batch_norm(f"{name}_bn")(x)
    return prelu(f"{name}_prelu")(x) if activation else x


def _bottleneck(x, expansion, filters, strides, name, style):
    channels = x.shape[-1]
    y = _conv_bn(x, channels * expansion, 1, 1, f"{name}_expand")
    y = _conv_bn(y, None, 3, strides, f"{name}_dw", depthwise=True, style=style)
    y = _conv_bn(y, filters, 1, 1, f"{name}_project", activation=False)
    if strides == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


@register_backbone("mobilefacenet", tiny={"embedding_size": 8, "input_shape": (32, 32, 3)})
class MobileFaceNet(keras.Model):
    """MobileFaceNet: conv3x3/2 64, dw3x3 64, five bottleneck stages (t, c, n, s) =
    (2,64,5,2) (4,128,1,2) (2,128,6,1) (4,128,1,2) (2,128,2,1), conv1x1 512, a linear global
    depthwise conv (GDConv, kernel = the final feature map, 7x7 at 112x112), a linear 1x1 conv
    to the embedding and BatchNorm.  PReLU activations.  0.99M parameters at 128-d.

    Variants of the published ports are parameters, not copies: ``padding="same"`` pads strided
    convolutions as TensorFlow does (MobileFaceNet_TF, the reference ``MobileFaceNet.tflite``;
    the default ``"symmetric"`` pads as PyTorch does), and ``separable_pointwise=True`` adds the
    linear 1x1 convolution (+ BatchNorm) that TensorFlow's separable convolutions put after the
    stem's depthwise conv and after GDConv.

    The embedding is float32 under any mixed policy.  ``input_shape`` must be divisible by 16.
    """

    PARAMETER_RANGES = {"embedding_size": POSITIVE_INTEGER}

    def __init__(self, embedding_size=128, input_shape=(112, 112, 3), padding="symmetric",
                 separable_pointwise=False, name="mobilefacenet", **kwargs):
        check_parameters(self, embedding_size=embedding_size)
        height, width = input_shape[0], input_shape[1]
        if height % 16 or width % 16:
            raise InputError(f"MobileFaceNet needs a size divisible by 16, got {input_shape}")
        if padding not in PADDINGS:
            raise InputError(f"padding must be one of {PADDINGS}, got {padding!r}")
        inputs = keras.Input(tuple(input_shape), name="image")
        x = _conv_bn(inputs, 64, 3, 2, "stem", style=padding)
        x = _conv_bn(x, None, 3, 1, "stem_dw", depthwise=True, style=padding)
        if separable_pointwise:
            x = _conv_bn(x, 64, 1, 1, "stem_pw", activation=False)
        for stage, (expansion, filters, repeats, strides) in enumerate(BOTTLENECKS):
            for i in range(repeats):
                x = _bottleneck(x, expansion, filters, strides if i == 0 else 1, f"stage{stage}_block{i}", padding)
        x = _conv_bn(x, 512, 1, 1, "head_conv")
        x = _conv_bn(x, None, (height // 16, width // 16), 1, "gdconv", activation=False, depthwise=True,
                     padding=0)
        if separable_pointwise:
            x = _conv_bn(x, 512, 1, 1, "gdconv_pw", activation=False)
        x = _conv_bn(x, embedding_size, 1, 1, "linear", activation=False)
        x = keras.layers.Flatten(name="flatten")(x)
        super().__init__(inputs, float32_output(x), name=name, **kwargs)
        self.embedding_size = int(embedding_size)
        self.image_shape = tuple(int(d) for d in input_shape)
        self.padding = padding
        self.separable_pointwise = bool(separable_pointwise)

    def get_config(self):
        config = {"embedding_size": self.embedding_size, "input_shape": list(self.image_shape),
                  "name": self.name, "trainable": self.trainable}
        if self.padding != "symmetric" or self.separable_pointwise:  # older files have neither key
            config.update({"padding": self.padding, "separable_pointwise": self.separable_pointwise})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
