"""The loss form of a head, for Sequential models where labels only reach the loss."""

import keras
from keras import ops

from keras_arcface.heads.labels import prepare_labels


@keras.saving.register_keras_serializable(package="keras_arcface")
class MarginLoss(keras.losses.Loss):
    """Margin softmax cross-entropy from a head's margin-free logits and fit's labels.

    ``keras.Sequential([backbone, ArcFaceLayer(N)])`` cannot pass labels to the head, so the
    head returns s cos theta_j and this loss applies the head's own margin (the same
    :meth:`MarginHead.margin_logits`, hence the same formula) before a float32
    cross-entropy: the loss equals that of ``head([embeddings, labels])``.
    Rows whose label is invalid inside a compiled graph (-1) contribute zero loss.
    Use it as ``model.compile(loss=head.margin_loss())``.
    """

    def __init__(self, head, name=None, reduction="sum_over_batch_size", dtype=None):
        head.require_loss_form()
        super().__init__(name=name or f"{head.name}_margin_loss", reduction=reduction,
                         dtype=dtype or "float32")
        self.head = head
        head._margin_loss_attached = True

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        labels = prepare_labels(y_true, self.head.num_classes)
        self.head.count_ignored_labels(labels)
        if self.head.has_margin:
            logits = self.head.margin_logits(logits, labels, self.head.scale, training=True)
        valid = labels >= 0
        per_row = keras.losses.sparse_categorical_crossentropy(
            ops.where(valid, labels, 0), logits, from_logits=True)
        return ops.where(valid, per_row, 0.0)

    def get_config(self):
        # The head's own config, without its build state: a loaded loss gets an unbuilt copy
        # of the head (the margin needs no weights), and the model keeps the built one.
        config = super().get_config()
        config["head"] = {"class_name": keras.saving.get_registered_name(type(self.head)),
                          "config": self.head.get_config()}
        return config

    @classmethod
    def from_config(cls, config):
        head_spec = config.pop("head")
        head_class = keras.saving.get_registered_object(head_spec["class_name"])
        return cls(head_class.from_config(head_spec["config"]), **config)
