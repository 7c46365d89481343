"""ElasticFace: ArcFace / CosFace with a margin drawn per sample from a normal distribution."""

import keras

from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, NON_NEGATIVE, POSITIVE, UNIT, check_parameters


class _ElasticMargin(MarginHead):
    """Per training step, every sample's margin is drawn from N(m, sigma); outside training
    (evaluation losses) the mean m is used.  The seed generator's state is saved."""

    PARAMETER_RANGES = {"scale": POSITIVE, "margin": ANGLE_MARGIN, "std": NON_NEGATIVE}

    def __init__(self, num_classes, scale=64.0, margin=0.5, std=0.05, seed=None, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale, self.margin, self.std = check_parameters(self, scale=scale, margin=margin, std=std)
        self.seed = seed

    def build(self, input_shape):
        super().build(input_shape)
        # Here, not in __init__: constructing the layer touches no backend (a JAX process can still
        # join a cluster after a config check built one).
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="margin_seed")

    def sample_margins(self, cos_theta_y, training):
        if not training:
            return self.margin
        return keras.random.normal(keras.ops.shape(cos_theta_y), mean=self.margin, stddev=self.std,
                                   dtype=cos_theta_y.dtype, seed=self.seed_generator)

    def extra_state(self):
        return {"seed_generator_state": self.seed_generator.state}

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin, "std": self.std, "seed": self.seed})
        return config


@register_head("elastic_arcface")
class ElasticArcFaceLayer(_ElasticMargin):
    """ElasticFace-Arc (Boutros et al., CVPRW 2022): s cos(theta_y + m_i), m_i ~ N(0.5, 0.05)
    per sample (with ArcFace's fallback past pi - m_i); defaults s = 64."""

    def target_cosine(self, cos_theta_y, training=None):
        return margins.arcface_target(cos_theta_y, self.sample_margins(cos_theta_y, training))


@register_head("elastic_cosface")
class ElasticCosFaceLayer(_ElasticMargin):
    """ElasticFace-Cos (Boutros et al., CVPRW 2022): s (cos theta_y - m_i), m_i ~ N(0.35, 0.05)."""

    PARAMETER_RANGES = {"margin": UNIT}

    def __init__(self, num_classes, scale=64.0, margin=0.35, std=0.05, seed=None, **kwargs):
        super().__init__(num_classes, scale=scale, margin=margin, std=std, seed=seed, **kwargs)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.cosface_target(cos_theta_y, self.sample_margins(cos_theta_y, training))
