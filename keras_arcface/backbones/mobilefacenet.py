"""MobileFaceNet (Chen et al., CCBR 2018): a 0.99M-parameter face embedding network, and its
variant with squeeze-excitation (Hu et al., CVPR 2018), Intel's face-reidentification-retail-0095."""

import keras

from keras_arcface.backbones.blocks import PADDINGS, batch_norm, conv, float32_output, prelu
from keras_arcface.backbones.conv import Conv2D
from keras_arcface.errors import InputError
from keras_arcface.registry import register_backbone
from keras_arcface.validation import NON_NEGATIVE_INTEGER, POSITIVE_INTEGER, check_parameters

# (expansion t, output channels c, repeats n, first stride s), Table 1 of the paper.
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))

#: The options that make MobileFaceNet Intel's face-reidentification-retail-0095 (its OpenVINO IR:
#: an SE block after every bottleneck's projection, squeezing 8x, one PReLU slope a layer, a
#: learnt per-channel scale and shift of the image, no BatchNorm after the embedding's 1x1 conv).
RETAIL_0095 = {"squeeze_excitation": 8, "shared_prelu": True, "input_batch_norm": True,
               "embedding_batch_norm": False}


def _conv_bn(x, filters, kernel_size, strides, name, activation=True, depthwise=False, padding=None,
             style="symmetric", shared_prelu=False):
    x = conv(filters, kernel_size, strides, name=f"{name}_conv", padding=padding, groups_depthwise=depthwise,
             style=style)(x)
    x = batch_norm(f"{name}_bn")(x)
    return prelu(f"{name}_prelu", shared=shared_prelu)(x) if activation else x


def _squeeze_excitation(x, reduction, name, shared_prelu):
    """x * sigmoid(W2 prelu(W1 mean_hw(x) + b1) + b2), W1: C -> C / reduction (Hu et al., 2018)."""
    channels = x.shape[-1]
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    gate = Conv2D(max(1, channels // reduction), 1, name=f"{name}_reduce")(gate)
    gate = prelu(f"{name}_prelu", shared=shared_prelu)(gate)
    gate = Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(gate)
    return keras.layers.Multiply(name=f"{name}_scale")([x, gate])


def _bottleneck(x, expansion, filters, strides, name, style, squeeze_excitation, shared_prelu):
    channels = x.shape[-1]
    y = _conv_bn(x, channels * expansion, 1, 1, f"{name}_expand", shared_prelu=shared_prelu)
    y = _conv_bn(y, None, 3, strides, f"{name}_dw", depthwise=True, style=style, shared_prelu=shared_prelu)
    y = _conv_bn(y, filters, 1, 1, f"{name}_project", activation=False)
    if squeeze_excitation:
        y = _squeeze_excitation(y, squeeze_excitation, f"{name}_se", shared_prelu)
    if strides == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


@register_backbone("mobilefacenet", tiny={"embedding_size": 8, "input_shape": (32, 32, 3)})
@register_backbone("mobilefacenet_se", tiny={"embedding_size": 8, "input_shape": (32, 32, 3)}, **RETAIL_0095)
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

    ``mobilefacenet_se`` is the network of Intel's face-reidentification-retail-0095 (at 128x128 and
    256-d, 1.1M parameters): ``squeeze_excitation=r`` puts a squeeze-excitation block (global mean, 1x1 conv to
    C / r, PReLU, 1x1 conv back to C, sigmoid, product) after every bottleneck's projection;
    ``shared_prelu`` gives each PReLU one slope instead of one a channel; ``input_batch_norm``
    normalises the image by a learnt per-channel scale and shift (a BatchNorm); and
    ``embedding_batch_norm=False`` leaves the embedding's 1x1 conv without its BatchNorm.

    The embedding is float32 under any mixed policy.  ``input_shape`` must be divisible by 16.
    """

    PARAMETER_RANGES = {"embedding_size": POSITIVE_INTEGER, "squeeze_excitation": NON_NEGATIVE_INTEGER}
    #: get_config's keys for the options beyond the paper's network, with the values that leave it as
    #: published: only the others are written (configs saved before an option existed load the same).
    VARIANT_DEFAULTS = {"padding": "symmetric", "separable_pointwise": False, "squeeze_excitation": 0,
                        "shared_prelu": False, "input_batch_norm": False, "embedding_batch_norm": True}

    def __init__(self, embedding_size=128, input_shape=(112, 112, 3), padding="symmetric",
                 separable_pointwise=False, squeeze_excitation=0, shared_prelu=False, input_batch_norm=False,
                 embedding_batch_norm=True, name=None, **kwargs):
        check_parameters(self, embedding_size=embedding_size, squeeze_excitation=squeeze_excitation)
        height, width = input_shape[0], input_shape[1]
        if height % 16 or width % 16:
            raise InputError(f"MobileFaceNet needs a size divisible by 16, got {input_shape}")
        if padding not in PADDINGS:
            raise InputError(f"padding must be one of {PADDINGS}, got {padding!r}")
        shared = bool(shared_prelu)
        inputs = keras.Input(tuple(input_shape), name="image")
        x = batch_norm("input_bn")(inputs) if input_batch_norm else inputs
        x = _conv_bn(x, 64, 3, 2, "stem", style=padding, shared_prelu=shared)
        x = _conv_bn(x, None, 3, 1, "stem_dw", depthwise=True, style=padding, shared_prelu=shared)
        if separable_pointwise:
            x = _conv_bn(x, 64, 1, 1, "stem_pw", activation=False)
        for stage, (expansion, filters, repeats, strides) in enumerate(BOTTLENECKS):
            for i in range(repeats):
                x = _bottleneck(x, expansion, filters, strides if i == 0 else 1, f"stage{stage}_block{i}", padding,
                                int(squeeze_excitation), shared)
        x = _conv_bn(x, 512, 1, 1, "head_conv", shared_prelu=shared)
        x = _conv_bn(x, None, (height // 16, width // 16), 1, "gdconv", activation=False, depthwise=True,
                     padding=0)
        if separable_pointwise:
            x = _conv_bn(x, 512, 1, 1, "gdconv_pw", activation=False)
        if embedding_batch_norm:
            x = _conv_bn(x, embedding_size, 1, 1, "linear", activation=False)
        else:
            x = conv(embedding_size, 1, 1, name="linear_conv")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        name = name or ("mobilefacenet_se" if squeeze_excitation else "mobilefacenet")
        super().__init__(inputs, float32_output(x), name=name, **kwargs)
        self.embedding_size = int(embedding_size)
        self.image_shape = tuple(int(d) for d in input_shape)
        self.padding, self.separable_pointwise = padding, bool(separable_pointwise)
        self.squeeze_excitation, self.shared_prelu = int(squeeze_excitation), shared
        self.input_batch_norm, self.embedding_batch_norm = bool(input_batch_norm), bool(embedding_batch_norm)

    def get_config(self):
        config = {"embedding_size": self.embedding_size, "input_shape": list(self.image_shape),
                  "name": self.name, "trainable": self.trainable}
        config.update({key: getattr(self, key) for key, published in self.VARIANT_DEFAULTS.items()
                       if getattr(self, key) != published})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
