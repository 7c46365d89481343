"""ArcFace: additive angular margin."""


from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, POSITIVE, check_parameters


@register_head("arcface")
class ArcFaceLayer(MarginHead):
    """ArcFace (Deng et al., CVPR 2019): target logit s cos(theta_y + m); defaults s=64, m=0.5.

    Where theta_y + m > pi the target is s (cos theta_y - m sin m) (InsightFace's fallback),
    so it never increases with theta.  ``easy_margin=True`` applies the margin only where
    cos theta_y > 0.  See :func:`keras_arcface.heads.margins.arcface_target`.
    """

    PARAMETER_RANGES = {"scale": POSITIVE, "margin": ANGLE_MARGIN}

    def __init__(self, num_classes, scale=64.0, margin=0.5, easy_margin=False, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale, self.margin = check_parameters(self, scale=scale, margin=margin)
        self.easy_margin = bool(easy_margin)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.arcface_target(cos_theta_y, self.margin, self.easy_margin)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin, "easy_margin": self.easy_margin})
        return config
