"""Partial FC: all class centres kept, the margin softmax computed on a sampled subset per step."""

import math

import keras
from keras import ops

from keras_arcface.errors import InputError
from keras_arcface.heads.base import MarginHead, cosine_matrix, replace_target_column, split_inputs, target_column
from keras_arcface.heads.labels import prepare_labels
from keras_arcface.registry import register_head
from keras_arcface.validation import POSITIVE_INTEGER, Interval, check_parameters

#: Margins Partial FC can wrap: a constant scale and a target that depends on cos theta_y only.
WRAPPABLE = ("arcface", "cosface", "combined", "normface")
#: Logit given to the classes left out of a step: exp(-1e4 - max) is exactly 0 in float32, so the
#: cross-entropy over all C columns equals the one over the sampled columns.
UNSAMPLED_LOGIT = -1.0e4


@register_head("partial_fc", old_names=("PartialFCHead",))
class PartialFCLayer(MarginHead):
    """Partial FC (An et al., CVPR 2022): a margin head over C classes that, per training step,
    computes the margin softmax on S = ceil(r C) classes: every positive class of the batch plus
    random negatives (uniform, without replacement).  Only the sampled centres get a gradient.

    ``margin_head`` (arcface, cosface, combined, normface) and ``margin_params`` choose the
    formula, e.g. ``PartialFCLayer(10**6, 0.1, "arcface", {"scale": 64, "margin": 0.5})``.
    Training output: (B, C) logits, the sampled columns with the margin and the others at
    ``UNSAMPLED_LOGIT``, so any sparse cross-entropy equals Partial FC's loss.  At r = 1 it is
    the full head.  Without labels (inference): s cos theta_j over all C classes.
    S must be at least min(batch, C), so that every positive fits (checked when the batch size is
    static; a positive left out would get the floor logit).  ``num_shards``: the kernel is
    (d, C') with C' the next multiple of it (padding never sampled nor returned), so it can be
    sharded over devices with :func:`partial_fc_layout_map` (JAX ``ModelParallel``).
    Momentum and weight decay of the optimizer still move unsampled centres, as in InsightFace.
    """

    no_loss_form = "it samples the class centres inside the layer, per step"

    PARAMETER_RANGES = {"sample_rate": Interval(0.0, 1.0, low_open=True), "num_shards": POSITIVE_INTEGER}

    def __init__(self, num_classes, sample_rate=0.1, margin_head="arcface", margin_params=None, num_shards=1,
                 seed=None, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.sample_rate, self.num_shards = check_parameters(self, sample_rate=sample_rate, num_shards=num_shards)
        if margin_head not in WRAPPABLE:
            raise InputError(f"PartialFCLayer: margin_head must be one of {WRAPPABLE}, got {margin_head!r}")
        from keras_arcface.heads import get_head

        self.margin_head = margin_head
        self.margin_params = dict(margin_params or {})
        self.seed = seed
        # The formula holder: never built, never called; its target_cosine and scale are used.
        self._margin = get_head(margin_head, 1, **self.margin_params)
        self.scale = self._margin.scale
        self.has_margin = self._margin.has_margin
        self.num_sampled = min(self.num_classes, max(1, math.ceil(self.sample_rate * self.num_classes)))
        self.padded_classes = -(-self.num_classes // self.num_shards) * self.num_shards

    def build(self, input_shape):
        super().build(input_shape)
        # Created here, not in __init__: constructing the layer (a config check) then touches no
        # backend, so a JAX process can still join a cluster afterwards.
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="sampling_seed")

    def kernel_columns(self):
        return self.padded_classes

    def cosine(self, embeddings, scale=1.0):
        return cosine_matrix(embeddings, self.kernel[:, : self.num_classes], scale)

    def target_cosine(self, cos_theta_y, training=None):
        return self._margin.target_cosine(cos_theta_y, training=training)

    def sample_classes(self, labels):
        """(S,) class ids: the batch's positive classes first, then random negatives."""
        valid = labels >= 0
        positive = ops.scatter(ops.where(valid, labels, 0)[:, None], ops.cast(valid, "float32"),
                               (self.num_classes,))
        scores = keras.random.uniform((self.num_classes,), seed=self.seed_generator) + 2.0 * ops.minimum(positive, 1.0)
        return ops.top_k(scores, self.num_sampled, sorted=False)[1]

    def call(self, inputs, labels=None, training=None):
        embeddings, labels = split_inputs(inputs, labels)
        if labels is None or not training or self.num_sampled >= self.num_classes:
            return super().call(embeddings, labels=labels, training=training)
        embeddings = ops.cast(embeddings, self.compute_dtype)
        labels = prepare_labels(labels, self.num_classes)
        self.count_ignored_labels(labels)
        batch = embeddings.shape[0]
        if batch is not None and min(batch, self.num_classes) > self.num_sampled:
            raise InputError(f"Partial FC samples {self.num_sampled} classes per step, fewer than the batch of "
                             f"{batch}: raise sample_rate so that every positive class fits")
        sampled = self.sample_classes(labels)
        logits_sampled = cosine_matrix(embeddings, ops.take(self.kernel, sampled, axis=1), self.scale)  # (B, S)
        # position of each class in `sampled` (-1 when not sampled), then of each label
        position = ops.scatter(sampled[:, None], ops.arange(1, self.num_sampled + 1, dtype="int32"),
                               (self.num_classes,)) - 1
        sampled_labels = ops.where(labels >= 0, ops.take(position, ops.maximum(labels, 0)), -1)
        logits_sampled, current = target_column(logits_sampled, sampled_labels)
        target = self.target_cosine(current / self.scale, training=training)
        logits_sampled = replace_target_column(logits_sampled, sampled_labels, self.scale * target, current)
        floor = ops.full((self.num_classes, ops.shape(embeddings)[0]), UNSAMPLED_LOGIT, dtype=logits_sampled.dtype)
        return ops.transpose(ops.scatter_update(floor, sampled[:, None], ops.transpose(logits_sampled)))

    def extra_state(self):
        return {"seed_generator_state": self.seed_generator.state}

    def get_config(self):
        config = super().get_config()
        config.update({"sample_rate": self.sample_rate, "margin_head": self.margin_head,
                       "margin_params": self.margin_params, "num_shards": self.num_shards, "seed": self.seed})
        return config


def partial_fc_layout_map(device_mesh, head_name="head", model_axis="model"):
    """A ``keras.distribution.LayoutMap`` sharding a Partial FC head's centres over ``model_axis``
    (the class axis; the head's ``num_shards`` must be a multiple of that axis' size)."""
    layout_map = keras.distribution.LayoutMap(device_mesh)
    layout_map[f"{head_name}/kernel"] = (None, model_axis)
    return layout_map
