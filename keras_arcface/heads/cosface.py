"""CosFace / AM-Softmax: additive cosine margin."""

import keras

from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead


@keras.saving.register_keras_serializable(package="keras_arcface")
class CosFaceLayer(MarginHead):
    """CosFace (Wang et al., CVPR 2018): target logit s (cos theta_y - m); defaults s=64, m=0.35."""

    def __init__(self, num_classes, scale=64.0, margin=0.35, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale = float(scale)
        self.margin = float(margin)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.cosface_target(cos_theta_y, self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin})
        return config
