"""The combined margin of the ArcFace paper: cos(m1 theta + m2) - m3."""

import keras

from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead


@keras.saving.register_keras_serializable(package="keras_arcface")
class CombinedMarginLayer(MarginHead):
    """Combined margin (Deng et al., ArcFace, Sec. 3.4): target s (cos(m1 theta_y + m2) - m3).

    (1, m, 0) is ArcFace, (1, 0, m) CosFace.  The paper's examples: CM1 = (1, 0.3, 0.2)
    and CM2 = (0.9, 0.4, 0.15).  Past theta* = (pi - m2) / m1 the target continues
    monotonically (see :func:`keras_arcface.heads.margins.combined_margin_target`).
    """

    #: The ArcFace paper's combined-margin settings (m1, m2, m3).
    CM1 = (1.0, 0.3, 0.2)
    CM2 = (0.9, 0.4, 0.15)

    def __init__(self, num_classes, scale=64.0, m1=1.0, m2=0.3, m3=0.2, **kwargs):
        super().__init__(num_classes, **kwargs)
        if m1 <= 0:
            raise ValueError(f"m1 must be positive, got {m1}")
        self.scale = float(scale)
        self.m1, self.m2, self.m3 = float(m1), float(m2), float(m3)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.combined_margin_target(cos_theta_y, self.m1, self.m2, self.m3)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "m1": self.m1, "m2": self.m2, "m3": self.m3})
        return config
