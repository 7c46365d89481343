"""NormFace: normalised weights and features, logits s cos theta_j, no margin."""


from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import POSITIVE, check_parameters


@register_head("normface")
class NormFaceLayer(MarginHead):
    """NormFace (Wang et al., ACM MM 2017): logits_j = s cos theta_j.

    Default s = 20: the ArcFace paper (TPAMI, Table 4) measured plain normalised softmax
    at 99.20% LFW with s = 20 against 98.56% with s = 64 (CASIA, ResNet-50); a large s
    without a margin over-fits the easy examples.
    """

    has_margin = False

    PARAMETER_RANGES = {"scale": POSITIVE}

    def __init__(self, num_classes, scale=20.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale = check_parameters(self, scale=scale)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale})
        return config
