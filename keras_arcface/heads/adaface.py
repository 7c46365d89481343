"""AdaFace: a margin adapted to image quality, measured by the feature norm."""

import keras
from keras import ops

from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, POSITIVE, UNIT, check_parameters


@register_head("adaface")
class AdaFaceLayer(MarginHead):
    """AdaFace (Kim et al., CVPR 2022); defaults s = 64, m = 0.4, h = 0.333, momentum 0.01.

    z = clip(h (||x|| - mu) / (sigma + eps), -1, 1) from the (detached, clipped to
    [0.001, 100]) feature norm and the moving batch mean mu and standard deviation sigma of
    norms (state, starting at 20 and 100, updated first in each training step); target logit
    s [cos(clip(theta_y - m z, eps, pi - eps)) - (m + m z)], eps = 1e-3.  The margin needs
    the norm, so AdaFace trains with labels in the layer (no ``margin_loss()``).
    Under MirroredStrategy each replica keeps its own statistics (a mean is read back).
    """

    needs_norms = True
    no_loss_form = "its margin needs the embedding's norm, which the margin-free logits have lost"

    PARAMETER_RANGES = {"scale": POSITIVE, "margin": ANGLE_MARGIN, "h": POSITIVE, "momentum": UNIT, "eps": POSITIVE}

    def __init__(self, num_classes, scale=64.0, margin=0.4, h=0.333, momentum=0.01, eps=1e-3, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale, self.margin, self.h, self.momentum, self.eps = check_parameters(
            self, scale=scale, margin=margin, h=h, momentum=momentum, eps=eps)

    def build(self, input_shape):
        super().build(input_shape)
        self.batch_mean = self.add_weight(name="batch_mean", shape=(), initializer=keras.initializers.Constant(20.0),
                                          trainable=False, aggregation="mean")
        self.batch_std = self.add_weight(name="batch_std", shape=(), initializer=keras.initializers.Constant(100.0),
                                         trainable=False, aggregation="mean")

    def target_cosine(self, cos_theta_y, training=None, norms=None):
        norms = ops.stop_gradient(ops.clip(ops.cast(norms, cos_theta_y.dtype), 0.001, 100.0))
        mean = ops.cast(self.batch_mean, norms.dtype)
        std = ops.cast(self.batch_std, norms.dtype)
        if training:
            count = ops.cast(ops.shape(norms)[0], norms.dtype)
            batch_mean = ops.mean(norms)
            batch_std = ops.sqrt(ops.sum(ops.square(norms - batch_mean)) / ops.maximum(count - 1.0, 1.0))
            mean = margins.moving_average(mean, batch_mean, self.momentum)
            std = margins.moving_average(std, batch_std, self.momentum)
            self.batch_mean.assign(ops.cast(mean, self.batch_mean.dtype))
            self.batch_std.assign(ops.cast(std, self.batch_std.dtype))
        z = ops.stop_gradient(margins.adaface_margin_scaler(norms, mean, std, self.h, self.eps))
        return margins.adaface_target(cos_theta_y, self.margin, z, self.eps)


    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin, "h": self.h, "momentum": self.momentum,
                       "eps": self.eps})
        return config
