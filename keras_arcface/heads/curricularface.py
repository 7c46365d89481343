"""CurricularFace: ArcFace positives, adaptively emphasised hard negatives."""

from keras import ops

from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead, replace_target_column, target_column
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, POSITIVE, UNIT, check_parameters


@register_head("curricularface")
class CurricularFaceLayer(MarginHead):
    """CurricularFace (Huang et al., CVPR 2020); defaults s = 64, m = 0.5.

    Target logit s T(cos theta_y) with T the ArcFace target (and its fallback past pi - m);
    a hard negative (cos theta_j > T(cos theta_y)) gets s cos theta_j (t + cos theta_j), easy
    negatives s cos theta_j.  t is layer state: each training step first sets
    t = 0.01 mean(cos theta_y) + 0.99 t (no gradient, valid rows only), then uses it; it
    starts at 0, so hard negatives are first de-emphasised, then emphasised as t grows.
    Under MirroredStrategy each replica keeps its own t (a mean is read back).  t must move once
    per step, inside the layer: CurricularFace trains with labels in the layer (no
    ``margin_loss()``).
    """

    no_loss_form = "t must move once per step, inside the layer"

    PARAMETER_RANGES = {"scale": POSITIVE, "margin": ANGLE_MARGIN, "t_momentum": UNIT}

    def __init__(self, num_classes, scale=64.0, margin=0.5, t_momentum=0.01, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.scale, self.margin, self.t_momentum = check_parameters(self, scale=scale, margin=margin,
                                                                    t_momentum=t_momentum)

    def build(self, input_shape):
        super().build(input_shape)
        self.t = self.add_weight(name="t", shape=(), initializer="zeros", trainable=False, aggregation="mean")

    def target_cosine(self, cos_theta_y, training=None):
        return margins.arcface_target(cos_theta_y, self.margin)

    def margin_logits(self, logits, labels, scale, training=None, norms=None):
        logits, current = target_column(logits, labels)
        cos_theta_y = current / scale
        target = self.target_cosine(cos_theta_y)
        valid = labels >= 0
        t = ops.cast(self.t, logits.dtype)
        if training:
            weights = ops.cast(valid, logits.dtype)
            batch_mean = ops.sum(cos_theta_y * weights) / ops.maximum(ops.sum(weights), 1.0)
            t = margins.moving_average(t, ops.stop_gradient(batch_mean), self.t_momentum)
            self.t.assign(ops.cast(t, self.t.dtype))
        cos_theta = logits / scale
        negatives = margins.curricular_negatives(cos_theta, target, ops.stop_gradient(t))
        negatives = ops.where(valid[:, None], negatives, cos_theta)
        return replace_target_column(scale * negatives, labels, scale * target, current)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "margin": self.margin, "t_momentum": self.t_momentum})
        return config
