"""MagFace: a margin that grows with the feature magnitude, plus a magnitude regulariser."""

from keras import ops

from keras_arcface.errors import InputError
from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, NON_NEGATIVE, POSITIVE, check_parameters


@register_head("magface")
class MagFaceLayer(MarginHead):
    """MagFace (Meng et al., CVPR 2021); defaults s = 64, [l_a, u_a] = [10, 110],
    [l_m, u_m] = [0.45, 0.8], lambda_g = 35.

    a = ||x|| clipped to [l_a, u_a]; m(a) = (u_m - l_m) (a - l_a) / (u_a - l_a) + l_m;
    target logit s cos(theta_y + m(a)) (ArcFace's formula with a per-sample margin, gradient
    through a); in training the layer adds lambda_g mean(a / u_a^2 + 1 / a) to the model's
    losses (``add_loss``), whose minimum over [l_a, u_a] lies at a = u_a: high-quality faces get large norms.
    The margin needs the norm, so MagFace trains with labels in the layer (no ``margin_loss()``).
    """

    needs_norms = True
    no_loss_form = "its margin needs the embedding's norm, which the margin-free logits have lost"

    PARAMETER_RANGES = {"scale": POSITIVE, "lower_norm": POSITIVE, "upper_norm": POSITIVE,
                        "lower_margin": ANGLE_MARGIN, "upper_margin": ANGLE_MARGIN, "lambda_g": NON_NEGATIVE}

    def __init__(self, num_classes, scale=64.0, lower_norm=10.0, upper_norm=110.0, lower_margin=0.45,
                 upper_margin=0.8, lambda_g=35.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        (self.scale, self.lower_norm, self.upper_norm, self.lower_margin, self.upper_margin,
         self.lambda_g) = check_parameters(self, scale=scale, lower_norm=lower_norm, upper_norm=upper_norm,
                                           lower_margin=lower_margin, upper_margin=upper_margin, lambda_g=lambda_g)
        if not self.lower_norm < self.upper_norm:
            raise InputError(f"MagFaceLayer: lower_norm must be below upper_norm, got {lower_norm!r} and "
                             f"{upper_norm!r}")
        if not self.lower_margin <= self.upper_margin:
            raise InputError(f"MagFaceLayer: lower_margin must not exceed upper_margin, got {lower_margin!r} "
                             f"and {upper_margin!r}")

    def target_cosine(self, cos_theta_y, training=None, norms=None):
        norms = ops.cast(norms, cos_theta_y.dtype)
        margin = margins.magface_margin(norms, self.lower_norm, self.upper_norm, self.lower_margin,
                                        self.upper_margin)
        if training:
            self.add_loss(self.lambda_g * ops.mean(margins.magface_regularizer(norms, self.lower_norm,
                                                                               self.upper_norm)))
        return margins.arcface_target(cos_theta_y, margin)


    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "lower_norm": self.lower_norm, "upper_norm": self.upper_norm,
                       "lower_margin": self.lower_margin, "upper_margin": self.upper_margin,
                       "lambda_g": self.lambda_g})
        return config
