"""Small building blocks shared by the backbones (InsightFace conventions: BN eps 1e-5)."""

import keras

from keras_arcface.backbones.conv import Conv2D
from keras_arcface.backbones.depthwise import DepthwiseConv2D
from keras_arcface.backbones.fused_batch_norm import BatchNormalization
from keras_arcface.backbones.prelu import PReLU
from keras_arcface.dtypes import head_dtype
from keras_arcface.errors import InputError

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1


def batch_norm(name, scale=True, epsilon=BN_EPSILON):
    """BatchNorm with TensorFlow's fused training kernel (:mod:`keras_arcface.backbones.fused_batch_norm`)."""
    return BatchNormalization(epsilon=epsilon, momentum=BN_MOMENTUM, scale=scale, name=name)


def prelu(name, shared=False):
    """PReLU (:mod:`keras_arcface.backbones.prelu`): a slope per channel (MobileFaceNet, IResNet, SFace)
    or, ``shared=True``, one slope for the whole layer (Intel's face-reidentification-retail-0095)."""
    return PReLU(shared_axes=[1, 2, 3] if shared else [1, 2], alpha_initializer=keras.initializers.Constant(0.25),
                 name=name)


#: How a convolution pads: "symmetric" as PyTorch / MXNet (k // 2 zeros on every side; InsightFace,
#: SFace) or "same" as TensorFlow (the extra zero of a strided convolution goes right and bottom).
PADDINGS = ("symmetric", "same")


def conv(filters, kernel_size, strides, name, padding=None, groups_depthwise=False, style="symmetric"):
    """Convolution without bias.  ``style="symmetric"`` pads (k - 1) // 2 zeros on every side (or
    ``padding``), so strided outputs match PyTorch: as the convolution's ``"same"`` where that is
    the same thing (stride 1, odd k), as its ``symmetric_padding`` otherwise (inside the layer,
    :mod:`keras_arcface.backbones.padding`); ``style="same"`` is
    TensorFlow's SAME padding (``padding=0`` still means none).  Depthwise convolutions are
    :class:`~keras_arcface.backbones.depthwise.DepthwiseConv2D` (the XLA-friendly one), the others
    :class:`~keras_arcface.backbones.conv.Conv2D` (its kernel gradient fast on oneDNN)."""
    if style not in PADDINGS:
        raise InputError(f"padding style must be one of {PADDINGS}, got {style!r}")
    pad = (kernel_size - 1) // 2 if padding is None else padding
    same_is_symmetric = strides == 1 and isinstance(kernel_size, int) and pad == (kernel_size - 1) // 2
    keras_padding = "same" if pad and (style == "same" or same_is_symmetric) else "valid"
    symmetric_padding = pad if keras_padding == "valid" else 0  # inside the layer: faster while training
    if groups_depthwise:
        return DepthwiseConv2D(kernel_size, strides=strides, padding=keras_padding, use_bias=False,
                               symmetric_padding=symmetric_padding, name=name)
    return Conv2D(filters, kernel_size, strides=strides, padding=keras_padding, use_bias=False,
                  symmetric_padding=symmetric_padding, name=name)


def float32_output(x, name="embedding"):
    """The embedding leaves the backbone in float32 under any mixed policy (float64 stays)."""
    return keras.layers.Activation("linear", dtype=head_dtype(), name=name)(x)
