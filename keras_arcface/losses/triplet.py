"""Triplet loss with in-batch mining, in keras.ops (replaces tensorflow-addons' TripletSemiHardLoss)."""

import keras
from keras import ops

from keras_arcface.validation import NON_NEGATIVE, check_parameters

DISTANCES = ("l2", "squared_l2", "cosine")
MINING = ("semi_hard", "hard")


def pairwise_distances(embeddings, distance="l2"):
    """(B, B) distances: Euclidean, squared Euclidean, or 1 - cosine; zero on the diagonal.

    The Euclidean distance is sqrt of the clipped squared distance, with a zero (not NaN)
    gradient where two embeddings coincide."""
    x = ops.cast(embeddings, "float32")
    if distance == "cosine":
        unit = x * ops.rsqrt(ops.maximum(ops.sum(x * x, axis=1, keepdims=True), 1e-12))
        d = 1.0 - ops.matmul(unit, ops.transpose(unit))
    else:
        squared = ops.sum(x * x, axis=1)
        d = ops.maximum(squared[:, None] + squared[None, :] - 2.0 * ops.matmul(x, ops.transpose(x)), 0.0)
        if distance == "l2":
            positive = d > 0.0
            d = ops.where(positive, ops.sqrt(ops.where(positive, d, 1.0)), 0.0)
    return d * (1.0 - ops.eye(ops.shape(x)[0], dtype=d.dtype))


@keras.saving.register_keras_serializable(package="keras_arcface")
class TripletLoss(keras.losses.Loss):
    """Triplet loss max(d(a, p) - d(a, n) + margin, 0) over the triplets of a batch (y_true: identity
    labels (B,), y_pred: embeddings (B, d)); computed in float32.

    ``mining="semi_hard"`` (FaceNet, Schroff et al., CVPR 2015; tensorflow-addons' semantics): every
    anchor-positive pair takes the closest negative farther than the positive, or, if there is
    none, the farthest negative; the loss is the mean over anchor-positive pairs.
    ``mining="hard"`` (batch-hard, Hermans et al., 2017): each anchor takes its farthest positive
    and closest negative; mean over anchors (``soft=True``: softplus(d_ap - d_an) instead).
    Anchors without a positive or without a negative in the batch contribute nothing; a batch
    with no valid triplet gives 0.
    """

    PARAMETER_RANGES = {"margin": NON_NEGATIVE}

    def __init__(self, margin=0.2, mining="semi_hard", distance="l2", soft=False, name="triplet_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        if mining not in MINING:
            raise ValueError(f"mining must be one of {MINING}, got {mining!r}")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        if soft and mining != "hard":
            raise ValueError("soft=True is the soft-margin batch-hard loss: use it with mining='hard'")
        self.margin = check_parameters(self, margin=margin)
        self.mining = mining
        self.distance = distance
        self.soft = bool(soft)

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        d = pairwise_distances(y_pred, self.distance)
        n = ops.shape(d)[0]
        same = ops.equal(labels[:, None], labels[None, :])
        positive = ops.logical_and(same, ops.logical_not(ops.cast(ops.eye(n), "bool")))
        negative = ops.logical_not(same)
        has_negative = ops.any(negative, axis=1)
        big = ops.cast(1e9, d.dtype)
        if self.mining == "hard":
            hardest_positive = ops.max(ops.where(positive, d, -big), axis=1)
            hardest_negative = ops.min(ops.where(negative, d, big), axis=1)
            gap = hardest_positive - hardest_negative
            per_anchor = ops.softplus(gap) if self.soft else ops.maximum(gap + self.margin, 0.0)
            valid = ops.logical_and(ops.any(positive, axis=1), has_negative)
            losses, count = ops.where(valid, per_anchor, 0.0), ops.sum(ops.cast(valid, d.dtype))
        else:
            d_ap = d[:, :, None]                      # (a, p, 1)
            d_an = d[:, None, :]                      # (a, 1, n)
            outside = ops.logical_and(negative[:, None, :], d_an > d_ap)
            closest_outside = ops.min(ops.where(outside, d_an, big), axis=2)
            farthest_inside = ops.max(ops.where(negative, d, -big), axis=1)
            chosen = ops.where(ops.any(outside, axis=2), closest_outside, farthest_inside[:, None])
            valid = ops.logical_and(positive, has_negative[:, None])
            losses = ops.where(valid, ops.maximum(d - chosen + self.margin, 0.0), 0.0)
            count = ops.sum(ops.cast(valid, d.dtype))
        # one value per batch, repeated per row so that Keras' mean reduction returns it
        total = ops.sum(losses) / ops.maximum(count, 1.0)
        return ops.ones_like(d[:, 0]) * total

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "mining": self.mining, "distance": self.distance, "soft": self.soft})
        return config
