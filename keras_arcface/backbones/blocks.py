"""Small building blocks shared by the backbones (InsightFace conventions: BN eps 1e-5)."""

import keras

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1


def batch_norm(name, scale=True):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, scale=scale, name=name)


def prelu(name):
    """Per-channel PReLU, the activation of both MobileFaceNet and IResNet."""
    return keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25),
                              name=name)


def conv(filters, kernel_size, strides, name, padding=None, groups_depthwise=False):
    """Convolution with PyTorch-style symmetric zero padding (so strided outputs match)."""
    layers = []
    pad = (kernel_size - 1) // 2 if padding is None else padding
    if pad:
        layers.append(keras.layers.ZeroPadding2D(pad, name=f"{name}_pad"))
    if groups_depthwise:
        layers.append(keras.layers.DepthwiseConv2D(kernel_size, strides=strides, use_bias=False, name=name))
    else:
        layers.append(keras.layers.Conv2D(filters, kernel_size, strides=strides, use_bias=False, name=name))

    def apply(x):
        for layer in layers:
            x = layer(x)
        return x

    return apply


def float32_output(x, name="embedding"):
    """The embedding leaves the backbone in float32 under any mixed policy (float64 stays)."""
    from keras_arcface.heads.base import head_dtype

    return keras.layers.Activation("linear", dtype=head_dtype(), name=name)(x)
