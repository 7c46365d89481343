"""The combined margin of the ArcFace paper: cos(m1 theta + m2) - m3."""


from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, POSITIVE, UNIT, check_parameters


@register_head("combined")
class CombinedMarginLayer(MarginHead):
    """Combined margin (Deng et al., ArcFace, Sec. 3.4): target s (cos(m1 theta_y + m2) - m3).

    (1, m, 0) is ArcFace, (1, 0, m) CosFace.  The paper's examples: CM1 = (1, 0.3, 0.2)
    and CM2 = (0.9, 0.4, 0.15).  Past theta* = (pi - m2) / m1 the target continues
    monotonically (see :func:`keras_arcface.heads.margins.combined_margin_target`).
    """

    #: The ArcFace paper's combined-margin settings (m1, m2, m3).
    CM1 = (1.0, 0.3, 0.2)
    CM2 = (0.9, 0.4, 0.15)

    PARAMETER_RANGES = {"scale": POSITIVE, "m1": POSITIVE, "m2": ANGLE_MARGIN, "m3": UNIT}

    def __init__(self, num_classes, scale=64.0, m1=1.0, m2=0.3, m3=0.2, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale, self.m1, self.m2, self.m3 = check_parameters(self, scale=scale, m1=m1, m2=m2, m3=m3)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.combined_margin_target(cos_theta_y, self.m1, self.m2, self.m3)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "m1": self.m1, "m2": self.m2, "m3": self.m3})
        return config
