"""CosFace / AM-Softmax: additive cosine margin."""


from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import POSITIVE, UNIT, check_parameters


@register_head("cosface")
class CosFaceLayer(MarginHead):
    """CosFace (Wang et al., CVPR 2018): target logit s (cos theta_y - m); defaults s=64, m=0.35."""

    #: m in [0, 1]: the paper bounds m by C / (C - 1) and uses 0.35.
    PARAMETER_RANGES = {"scale": POSITIVE, "margin": UNIT}

    def __init__(self, num_classes, scale=64.0, margin=0.35, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale, self.margin = check_parameters(self, scale=scale, margin=margin)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.cosface_target(cos_theta_y, self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin})
        return config
