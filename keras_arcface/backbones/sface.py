"""SFace (Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition",
IEEE TIP 2021), the network of OpenCV Zoo's ``face_recognition_sface_2021dec`` (Apache-2.0)."""

import keras

from keras_arcface.backbones.blocks import batch_norm, conv, float32_output, prelu
from keras_arcface.errors import InputError
from keras_arcface.registry import register_backbone
from keras_arcface.validation import DROPOUT, POSITIVE, POSITIVE_INTEGER, check_parameters

#: (depthwise stride, output channels) of the 13 depthwise-separable blocks after the 3x3 stem.
SEPARABLE_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512),
                    (1, 512), (1, 512), (2, 1024), (1, 1024))
#: BatchNorm epsilons of the published graph: 1e-3 after the convolutions, 2e-5 in the head.
CONV_BN_EPSILON, HEAD_BN_EPSILON = 1e-3, 2e-5


def _conv_bn_prelu(x, filters, kernel_size, strides, name, depthwise=False):
    x = conv(filters, kernel_size, strides, name=f"{name}_conv", groups_depthwise=depthwise)(x)
    x = batch_norm(f"{name}_bn", epsilon=CONV_BN_EPSILON)(x)
    return prelu(f"{name}_prelu")(x)


@register_backbone("sface", tiny={"embedding_size": 8, "input_shape": (32, 32, 3), "width": 0.125})
class SFace(keras.Model):
    """SFace's MobileNet-style network: conv3x3 32 (stride 1), 13 depthwise-separable blocks
    (dw3x3 + BN + PReLU, conv1x1 + BN + PReLU; no residuals) down to 7x7x1024, BatchNorm,
    dropout, flatten, a dense layer to the embedding and BatchNorm.  9.67M parameters at 128-d.

    ``width`` scales every channel count (tests use tiny widths); ``dropout`` is 0.4 as published
    (active in training only).  The embedding is float32 under any mixed policy.  Pretrained
    weights: ``keras-arcface convert`` from OpenCV Zoo's ONNX file, or the zoo entry ``sface``.
    """

    PARAMETER_RANGES = {"embedding_size": POSITIVE_INTEGER, "width": POSITIVE, "dropout": DROPOUT}

    def __init__(self, embedding_size=128, input_shape=(112, 112, 3), width=1.0, dropout=0.4, name="sface",
                 **kwargs):
        height, width_px = input_shape[0], input_shape[1]
        if height % 16 or width_px % 16:
            raise InputError(f"SFace needs a size divisible by 16, got {input_shape}")
        check_parameters(self, embedding_size=embedding_size, width=width, dropout=dropout)

        def channels(c):
            return max(1, int(round(c * width)))

        inputs = keras.Input(tuple(input_shape), name="image")
        x = _conv_bn_prelu(inputs, channels(32), 3, 1, "conv1")
        for index, (strides, filters) in enumerate(SEPARABLE_BLOCKS, start=2):
            x = _conv_bn_prelu(x, None, 3, strides, f"block{index}_dw", depthwise=True)
            x = _conv_bn_prelu(x, channels(filters), 1, 1, f"block{index}_pw")
        x = batch_norm("head_bn", epsilon=HEAD_BN_EPSILON)(x)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(embedding_size, name="fc")(x)
        x = batch_norm("features", epsilon=HEAD_BN_EPSILON)(x)
        super().__init__(inputs, float32_output(x), name=name, **kwargs)
        self.embedding_size = int(embedding_size)
        self.image_shape = tuple(int(d) for d in input_shape)
        self.width = float(width)
        self.dropout_rate = float(dropout)

    def get_config(self):
        return {"embedding_size": self.embedding_size, "input_shape": list(self.image_shape), "width": self.width,
                "dropout": self.dropout_rate, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
