"""IResNet (Deng et al., ArcFace; InsightFace's arcface_torch layout)."""

import keras

from keras_arcface.backbones.blocks import batch_norm, conv, float32_output, prelu
from keras_arcface.errors import InputError
from keras_arcface.registry import register_backbone
from keras_arcface.validation import DROPOUT, POSITIVE_INTEGER, check_parameters

#: Blocks per stage for the published depths.
STAGE_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
#: The registry-wide tests' configuration (one block per stage: the depths' tables are tested apart).
TINY = {"embedding_size": 8, "input_shape": (16, 16, 3), "stage_depths": (1, 1, 1, 1), "base_width": 4}


def _basic_block(x, filters, strides, name):
    """IBasicBlock: BN, conv3x3, BN, PReLU, conv3x3 (stride), BN, plus a shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv(filters, 1, strides, name=f"{name}_down_conv", padding=0)(x)
        shortcut = batch_norm(f"{name}_down_bn")(shortcut)
    y = batch_norm(f"{name}_bn1")(x)
    y = conv(filters, 3, 1, name=f"{name}_conv1")(y)
    y = batch_norm(f"{name}_bn2")(y)
    y = prelu(f"{name}_prelu")(y)
    y = conv(filters, 3, strides, name=f"{name}_conv2")(y)
    y = batch_norm(f"{name}_bn3")(y)
    return keras.layers.Add(name=f"{name}_add")([y, shortcut])


@register_backbone("iresnet18", TINY, 18)
@register_backbone("iresnet34", TINY, 34)
@register_backbone("iresnet50", TINY, 50)
@register_backbone("iresnet100", TINY, 100)
class IResNet(keras.Model):
    """IResNet-18/34/50/100: conv3x3 64 + BN + PReLU, four stages of IBasicBlocks (64, 128,
    256, 512 channels, stride 2 at each stage's first block, projection shortcut), then BN,
    dropout, flatten, dense to the embedding and a BatchNorm without learned scale
    (arcface_torch's ``features``).  IResNet-50: 43.6M parameters at 112x112.

    ``stage_depths`` and ``base_width`` allow small variants (tests); the embedding is float32
    under any mixed policy.
    """

    PARAMETER_RANGES = {"embedding_size": POSITIVE_INTEGER, "dropout": DROPOUT, "base_width": POSITIVE_INTEGER}

    def __init__(self, depth=50, embedding_size=512, input_shape=(112, 112, 3), dropout=0.0,
                 stage_depths=None, base_width=64, name=None, **kwargs):
        check_parameters(self, embedding_size=embedding_size, dropout=dropout, base_width=base_width)
        if stage_depths is None:
            if depth not in STAGE_DEPTHS:
                raise InputError(f"IResNet depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
            stage_depths = STAGE_DEPTHS[depth]
        inputs = keras.Input(tuple(input_shape), name="image")
        x = conv(base_width, 3, 1, name="stem_conv")(inputs)
        x = batch_norm("stem_bn")(x)
        x = prelu("stem_prelu")(x)
        for stage, blocks in enumerate(stage_depths):
            for i in range(blocks):
                x = _basic_block(x, base_width * 2**stage, 2 if i == 0 else 1, f"stage{stage}_block{i}")
        x = batch_norm("head_bn")(x)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(embedding_size, name="fc")(x)
        x = batch_norm("features", scale=False)(x)
        super().__init__(inputs, float32_output(x), name=name or f"iresnet{depth}", **kwargs)
        self.depth = int(depth)
        self.embedding_size = int(embedding_size)
        self.image_shape = tuple(int(d) for d in input_shape)
        self.dropout_rate = float(dropout)
        self.stage_depths = tuple(int(d) for d in stage_depths)
        self.base_width = int(base_width)

    def get_config(self):
        return {"depth": self.depth, "embedding_size": self.embedding_size,
                "input_shape": list(self.image_shape), "dropout": self.dropout_rate,
                "stage_depths": list(self.stage_depths), "base_width": self.base_width,
                "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
